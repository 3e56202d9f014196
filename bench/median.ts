/** The middle value (of an even count, the upper of the two middle ones), as every bench figure here is reported. */
export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
