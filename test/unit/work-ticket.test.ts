import { describe, expect, it } from 'vitest';
import { currentTicket, runWithTicket, type WorkTicket } from '../../src/admission/work-ticket.ts';

describe('the work ticket a request carries', () => {
  it('is the ticket of the work running, along its asynchronous path, and no other', async () => {
    const ticket: WorkTicket = { cls: 'start-signin', tenant: 't1', hashed: false };
    const other: WorkTicket = { cls: 'admin', tenant: 't2', hashed: false };
    expect(currentTicket()).toBeUndefined();
    const seen = await runWithTicket(ticket, async () => {
      await new Promise((resolve) => setImmediate(resolve));
      const inner = runWithTicket(other, () => currentTicket());
      return [currentTicket(), inner];
    });
    expect(seen[0]).toBe(ticket);
    expect(seen[1]).toBe(other);
    expect(currentTicket()).toBeUndefined();
  });
});
