/**
 * Streaming base64 decoding, tolerant the way mail clients are (RFC 2045 §6.8: "any
 * characters outside of the base64 alphabet are to be ignored"): whitespace, stray characters
 * and any line length are accepted; characters are collected in groups of four across chunk
 * and line boundaries so the output does not depend on how the input was split.
 *
 * Padding: `=` ends a quantum. Data after padding is decoded as a new run (some encoders
 * concatenate separately padded blocks), which is what lenient decoders do too.
 */

const NON_ALPHABET = /[^A-Za-z0-9+/]+/g;
/** Neither alphabet nor whitespace: worth an event (whitespace is how base64 is wrapped). */
const STRAY = /[^A-Za-z0-9+/\s]/;

export class Base64Decoder {
  /** Alphabet characters not yet forming a full group of 4 (at most 3). */
  #carry = '';
  /** Non-alphabet characters other than whitespace and padding were seen. */
  invalid = false;

  constructor(private readonly out: (chunk: Buffer) => void) {}

  write(input: Buffer): void {
    const text = input.toString('latin1');
    // One native pass splits runs at padding; within a run only the alphabet counts.
    const runs = text.split(/=+/);
    for (let i = 0; i < runs.length; i++) {
      const run = runs[i]!;
      if (!this.invalid && STRAY.test(run)) this.invalid = true;
      const clean = run.replace(NON_ALPHABET, '');
      this.#emit(this.#carry + clean, i < runs.length - 1);
    }
  }

  /** Flush a final partial group (missing padding is tolerated). */
  end(): void {
    this.#emit(this.#carry, true);
  }

  #emit(chars: string, padded: boolean): void {
    const whole = padded ? chars.length : chars.length - (chars.length % 4);
    if (whole > 0) {
      let group = chars.slice(0, whole);
      // A single leftover char carries no full byte; Node would ignore it, say so explicitly.
      if (group.length % 4 === 1) {
        this.invalid = true;
        group = group.slice(0, -1);
      }
      if (group.length) this.out(Buffer.from(group, 'base64'));
    }
    this.#carry = padded ? '' : chars.slice(whole);
  }
}
