/**
 * The V8 options `smtpwall start` is meant to run with. They can only be given on node's
 * command line (V8 sizes its heap once, at start; `v8.setFlagsFromString` is too late and
 * NODE_OPTIONS refuses some), so they are written in the three places that start the
 * gateway — the shebang of bin/smtpwall.js, `npm start` and contrib/smtpwall.service
 * (test/unit/app/node-flags.test.ts keeps them equal to this list) — and the supervisor
 * gives them to its workers.
 *
 * `--max-semi-space-size=32` (MiB; V8's default on 64-bit is 16). A small message allocates
 * about 180 KB on the JS heap, so with the default young generation a scavenge runs every
 * ~70 messages, and a session's objects — alive for the session, 10–50 ms under load —
 * survive two of them and are promoted: ~17 KB a message, with the message's buffers held
 * until the next full GC. That is tolerable while V8's old-space limit is high; after an
 * idle period of ~10 s V8's memory reducer shrinks the heap and its limit, and the next burst
 * then pays a full mark-compact every ~200 ms instead of every ~1 s, for thousands of
 * messages (concurrent marking on V8's helper threads included). Measured with smtp-source
 * → smtpwall → smtp-sink, 10 KB × 10 sessions, 5,000 messages after 40 s of idle: 1.28–1.67
 * ms of CPU a message with the default, 0.83–0.90 with 32 or 64 MiB semi-spaces, the same as
 * without an idle period (0.79–0.89). It costs at most 32 MiB more young generation under
 * load; an idle gateway's young generation is not grown.
 */

export const GATEWAY_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=32'];

/** The flags of GATEWAY_NODE_FLAGS that `execArgv` (node's own options) lacks. */
export function missingNodeFlags(execArgv: readonly string[] = process.execArgv): string[] {
  return GATEWAY_NODE_FLAGS.filter((f) => !execArgv.includes(f));
}

/** `execArgv` with the gateway's flags added (for the supervisor's workers). */
export function withGatewayFlags(execArgv: readonly string[] = process.execArgv): string[] {
  return [...execArgv, ...missingNodeFlags(execArgv)];
}
