/**
 * An analysis worker thread: files in, verdicts out, one at a time (pool.ts decides what it
 * gets and for how long). Nothing here touches the gateway's state.
 */

import { parentPort } from 'node:worker_threads';
import { analyze } from './analyze.ts';
import type { AnalysisRequest, AnalysisResponse } from './pool.ts';

const port = parentPort;
if (!port) throw new Error('worker.ts runs as a worker thread of AnalysisPool');

port.on('message', (req: AnalysisRequest) => {
  let res: AnalysisResponse;
  try {
    const bytes = Buffer.from(req.bytes.buffer, req.bytes.byteOffset, req.bytes.byteLength);
    res = { id: req.id, verdict: analyze({ bytes, detectedType: req.detectedType, name: req.name, flags: req.flags }) };
  } catch (err) {
    // An analyzer bug on a crafted file: reported as this file's failure, the worker goes on.
    res = { id: req.id, error: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(res);
});
