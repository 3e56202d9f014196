/**
 * The actions a decision can take, in the firewall vocabulary, ordered by severity: when
 * findings disagree, the most severe action wins.
 */

export const ACTIONS = [
  'allow',
  'alert',
  'tempfail',
  'reject',
  'block',
  'drop',
  'reset-client',
  'reset-server',
  'reset-both',
] as const;

export type Action = (typeof ACTIONS)[number];

export function severityOf(a: Action): number {
  return ACTIONS.indexOf(a);
}

export function mostSevere(a: Action, b: Action): Action {
  return severityOf(a) >= severityOf(b) ? a : b;
}
