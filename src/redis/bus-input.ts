/**
 * Everything a node reads from Redis comes from whoever can write to it: a neighbour on a shared Redis,
 * a bug, an attacker. Each value is checked here before it is used; one that fails is reported (logged and
 * counted by the caller's `Rejected`) and ignored, never trusted, never a crash.
 */

/** Reports an ignored value: what kind of value, and (a bounded part of) what it was. */
export type Rejected = (kind: string, value: unknown) => void;

/** Messages and values longer than this are rejected unread. */
export const MAX_VALUE_LENGTH = 1024;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A job id as the engine writes it (a lower-case UUID), or null. */
export function jobIdFrom(value: unknown): string | null {
  return typeof value === 'string' && UUID.test(value) ? value : null;
}

/** A node or worker id: 1-128 printable characters without spaces, or null. */
export function memberIdFrom(value: unknown): string | null {
  return typeof value === 'string' && /^[\x21-\x7e]{1,128}$/.test(value) ? value : null;
}

/** A whole number in [min, max] written as decimal digits, or null. */
export function countFrom(value: unknown, min: number, max: number): number | null {
  if (typeof value !== 'string' || !/^\d{1,9}$/.test(value)) return null;
  const n = Number(value);
  return n >= min && n <= max ? n : null;
}

/** A bounded preview of a rejected value, for the log. */
export function preview(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  return text.length > 200 ? `${text.slice(0, 200)}… (${text.length} characters)` : text;
}
