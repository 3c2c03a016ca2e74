import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { Sweeper } from '../../src/retention/sweeper.ts';

describe('the sweeper while the node runs on its outage fallback', () => {
  afterEach(() => vi.useRealTimers());

  it('skips its timed passes while paused, and sweeps again once not', async () => {
    vi.useFakeTimers();
    let paused = true;
    const sweeper = new Sweeper({} as never, new ManualClock(0), {} as never, [], { engine: 'postgres', paused: () => paused });
    const passes = vi.spyOn(sweeper, 'runOnce').mockResolvedValue({ removed: {}, problems: [] } as never);
    sweeper.start(1000);
    await vi.advanceTimersByTimeAsync(3500);
    expect(passes).not.toHaveBeenCalled();
    paused = false;
    await vi.advanceTimersByTimeAsync(1000);
    expect(passes).toHaveBeenCalledTimes(1);
    await sweeper.stop();
  });
});
