// Entry point of an analysis worker thread (pool.ts). Worker threads do not inherit the
// TypeScript loader the main thread registered, so each registers it before loading the
// worker itself.
import { registerTypeScript } from '../../../runtime/typescript.mjs';

registerTypeScript();
await import('./worker.ts');
