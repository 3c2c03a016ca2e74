import type { Channel } from '../../delivery/channel.ts';

/** Where a code went, as answers show it. */
export interface SentCode {
  channel: Channel;
  /** Masked. */
  to: string;
  expiresAt: string;
  resendAfterSeconds: number;
}
