import type { Clock } from '../../clock.ts';
import { randomInt } from 'node:crypto';
import { randomToken } from '../../crypto/random.ts';
import { AppError } from '../../errors/app-error.ts';
import type { EphemeralStore } from '../../store/ephemeral/ephemeral-store.ts';
import { flowBinding } from './device-signature.ts';
import { Type, type Static } from 'typebox';
import { NumberRecord, StringRecord, parseRecord } from '../../store/parse-record.ts';

/** A request to approve a sign-in, waiting on the user's paired devices. */
const PushChallengeRecord = Type.Object({
  id: Type.String(),
  tenantId: Type.String(),
  userId: Type.String(),
  username: Type.String(),
  flowId: Type.String(),
  binding: Type.String(),
  /** Two digits the sign-in page shows and the person types on the device. Never sent to the device. */
  number: Type.String(),
  deviceIds: Type.Array(Type.String()),
  /** What the device shows about the sign-in: the app, where from, which browser. */
  context: Type.Object({ app: Type.Optional(Type.String()), ip: Type.Optional(Type.String()), userAgent: Type.Optional(Type.String()) }),
  createdAt: Type.Number(),
  expiresAt: Type.Number(),
});
export type PushChallenge = Static<typeof PushChallengeRecord>;

export type PushDecisionReason = 'approved' | 'denied' | 'not-me' | 'wrong-number';

const PushOutcomeRecord = Type.Object({
  state: Type.Union([Type.Literal('approved'), Type.Literal('denied')]),
  reason: Type.Union([Type.Literal('approved'), Type.Literal('denied'), Type.Literal('not-me'), Type.Literal('wrong-number')]),
  challengeId: Type.String(),
  flowId: Type.String(),
  deviceId: Type.String(),
  at: Type.Number(),
});
export type PushOutcome = Static<typeof PushOutcomeRecord>;

export type PushState = 'none' | 'pending' | 'approved' | 'denied' | 'expired';

export interface PushLimits {
  /** How long a request can be answered. */
  lifetimeMs: number;
  /** Requests per user per hour. */
  perHour: number;
  /** Denials (within `pauseMs` of each other) after which requests pause for `pauseMs`. */
  denialsBeforePause: number;
  pauseMs: number;
}

export const DEFAULT_PUSH_LIMITS: PushLimits = { lifetimeMs: 60_000, perHour: 5, denialsBeforePause: 3, pauseMs: 15 * 60_000 };

// How long a finished request's outcome can be read (the sign-in page polls, then verifies).
const OUTCOME_TTL_MS = 5 * 60_000;
// A flow's request stays findable as long as the flow may live.
const FLOW_LINK_TTL_MS = 10 * 60_000;

const challengeKey = (id: string) => `push:c:${id}`;
const outcomeKey = (id: string) => `push:o:${id}`;
const flowKey = (flowId: string) => `push:flow:${flowId}`;
const pendingKey = (tenantId: string, userId: string) => `push:pending:${tenantId}:${userId}`;
const sentKey = (tenantId: string, userId: string) => `push:sent:${tenantId}:${userId}`;
const denialsKey = (tenantId: string, userId: string) => `push:denials:${tenantId}:${userId}`;

/**
 * Push requests in the ephemeral store, so any node can show, answer or
 * verify them. A request is answered once: the answer takes it atomically,
 * and the outcome is taken once by the verification that finishes the sign-in.
 * Fatigue limits live here too: a few requests per user per hour, a pause
 * after repeated denials, and one pending request per user at a time.
 */
export class PushChallenges {
  constructor(
    private readonly store: EphemeralStore,
    private readonly clock: Clock,
    readonly limits: PushLimits = DEFAULT_PUSH_LIMITS,
  ) {}

  /**
   * Opens a request for this flow, or gives back the one the flow already has
   * pending (a reloaded page shows the same number, and no second request goes out).
   * `fresh` is false for that existing one: nothing needs sending.
   */
  async open(input: Omit<PushChallenge, 'id' | 'binding' | 'number' | 'createdAt' | 'expiresAt'>): Promise<{ challenge: PushChallenge; fresh: boolean }> {
    const { tenantId, userId } = input;
    const now = this.clock.now();
    const pendingId = parseRecord(StringRecord, await this.store.get(pendingKey(tenantId, userId)));
    if (pendingId !== undefined) {
      const existing = await this.live(pendingId);
      if (existing?.flowId === input.flowId) return { challenge: existing, fresh: false };
      if (existing) throw new AppError('push-pending', undefined, {}, Math.max(1, Math.ceil((existing.expiresAt - now) / 1000)));
    }
    const denials = parseRecord(NumberRecord, await this.store.get(denialsKey(tenantId, userId))) ?? 0;
    if (denials >= this.limits.denialsBeforePause) {
      throw new AppError(
        'push-limit',
        'Sign-in requests to your device are paused after several were denied; use another method',
        {},
        Math.ceil(this.limits.pauseMs / 1000),
      );
    }
    const challenge: PushChallenge = {
      ...input,
      id: randomToken(16),
      binding: flowBinding(input.flowId),
      // 10 to 99: always two digits, nothing to misread as a shorter number.
      number: String(randomInt(10, 100)),
      createdAt: now,
      expiresAt: now + this.limits.lifetimeMs,
    };
    // The per-user slot is what keeps a second request from going out while one is pending, on any node.
    if (!(await this.store.setIfAbsent(pendingKey(tenantId, userId), challenge.id, this.limits.lifetimeMs))) {
      throw new AppError('push-pending', undefined, {}, Math.ceil(this.limits.lifetimeMs / 1000));
    }
    const sent = await this.store.increment(sentKey(tenantId, userId), 3_600_000);
    if (sent > this.limits.perHour) {
      await this.store.delete(pendingKey(tenantId, userId));
      throw new AppError('push-limit', undefined, {}, 15 * 60);
    }
    await Promise.all([
      this.store.set(challengeKey(challenge.id), challenge, this.limits.lifetimeMs),
      this.store.set(flowKey(input.flowId), challenge.id, FLOW_LINK_TTL_MS),
    ]);
    return { challenge, fresh: true };
  }

  /** Withdraws a request nobody could be told about (no device reachable): it frees the slot and the hourly count. */
  async withdraw(challenge: PushChallenge): Promise<void> {
    await Promise.all([
      this.store.delete(challengeKey(challenge.id)),
      this.store.delete(flowKey(challenge.flowId)),
      this.releaseSlot(challenge),
      // Nobody was asked: it does not count towards the user's requests this hour (a phone that is off would use them up).
      this.store.giveBack(sentKey(challenge.tenantId, challenge.userId)),
    ]);
  }

  /** The request a user's devices should show now, if any. */
  async pendingFor(tenantId: string, userId: string): Promise<PushChallenge | undefined> {
    const id = parseRecord(StringRecord, await this.store.get(pendingKey(tenantId, userId)));
    return id === undefined ? undefined : this.live(id);
  }

  async get(id: string): Promise<PushChallenge | undefined> {
    return this.live(id);
  }

  /**
   * Answers a request, once: of racing answers (two devices, a replay) exactly
   * one takes it. A number that does not match denies it: a person guessing to
   * get rid of a prompt must not approve a stranger's sign-in by luck.
   * Undefined when the request is gone (answered, expired, unknown).
   */
  async decide(
    id: string,
    deviceId: string,
    decision: 'approve' | 'deny',
    number: string,
    notMe: boolean,
  ): Promise<{ challenge: PushChallenge; outcome: PushOutcome } | undefined> {
    const challenge = parseRecord(PushChallengeRecord, await this.store.take(challengeKey(id)));
    const now = this.clock.now();
    if (!challenge || challenge.expiresAt <= now) return undefined;
    const reason: PushDecisionReason = decision === 'deny' ? (notMe ? 'not-me' : 'denied') : number === challenge.number ? 'approved' : 'wrong-number';
    const outcome: PushOutcome = { state: reason === 'approved' ? 'approved' : 'denied', reason, challengeId: id, flowId: challenge.flowId, deviceId, at: now };
    await Promise.all([this.store.set(outcomeKey(id), outcome, OUTCOME_TTL_MS), this.releaseSlot(challenge)]);
    if (outcome.state === 'denied') await this.store.increment(denialsKey(challenge.tenantId, challenge.userId), this.limits.pauseMs);
    return { challenge, outcome };
  }

  /** Where a flow's request stands. */
  async state(flowId: string): Promise<PushState> {
    const id = parseRecord(StringRecord, await this.store.get(flowKey(flowId)));
    if (id === undefined) return 'none';
    const outcome = parseRecord(PushOutcomeRecord, await this.store.get(outcomeKey(id)));
    if (outcome) return outcome.state;
    return (await this.live(id)) ? 'pending' : 'expired';
  }

  /**
   * Takes the approval of a flow's request, once: the verification that
   * finishes the sign-in. Undefined unless there is an approval, for this flow.
   */
  async takeApproval(flowId: string): Promise<PushOutcome | undefined> {
    const id = parseRecord(StringRecord, await this.store.get(flowKey(flowId)));
    if (id === undefined) return undefined;
    const seen = parseRecord(PushOutcomeRecord, await this.store.get(outcomeKey(id)));
    if (seen?.state !== 'approved') return undefined;
    const taken = parseRecord(PushOutcomeRecord, await this.store.take(outcomeKey(id)));
    return taken?.state === 'approved' && taken.flowId === flowId ? taken : undefined;
  }

  private async live(id: string): Promise<PushChallenge | undefined> {
    const challenge = parseRecord(PushChallengeRecord, await this.store.get(challengeKey(id)));
    return challenge && challenge.expiresAt > this.clock.now() ? challenge : undefined;
  }

  /** Frees the user's pending slot if it still holds this request (a newer one is left alone). */
  private async releaseSlot(challenge: PushChallenge): Promise<void> {
    const key = pendingKey(challenge.tenantId, challenge.userId);
    if (parseRecord(StringRecord, await this.store.get(key)) === challenge.id) await this.store.delete(key);
  }
}
