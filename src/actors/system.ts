import nact from 'nact';
import type { Ref, ActorSystemRef, SupervisionContext } from 'nact';
import { ActorTimeoutError } from '../errors.ts';

/** nact is CommonJS; its functions are reached through the default export. */
export const { start, spawn, dispatch, query, stop } = nact;
export type { Ref, ActorSystemRef, SupervisionContext };

/** Every ask has a deadline (nact demands one); a missed deadline becomes a typed error. */
export async function ask<Msg, Reply>(
  actor: Ref<Msg>,
  message: (replyTo: Ref<Reply>) => Msg,
  timeoutMs: number,
  actorName: string,
): Promise<Reply> {
  try {
    return (await query(actor, message as never, timeoutMs)) as Reply;
  } catch (error) {
    if (error instanceof Error && error.message === 'Query Timeout') throw new ActorTimeoutError(actorName, timeoutMs);
    throw error;
  }
}
