import { describe, expect, it } from 'vitest';
import { DEFAULT_EXPORT_SHARE, ExportPacing } from '../../src/activity/export-pacing.ts';

describe('ExportPacing: exports yield to requests', () => {
  const pacing = (busy: boolean, share?: number) => {
    const pauses: number[] = [];
    const pacer = new ExportPacing({
      busy: () => busy,
      ...(share === undefined ? {} : { share }),
      sleep: async (ms) => {
        pauses.push(ms);
      },
    });
    return { pacer, pauses };
  };

  it('runs at full speed on an idle node', async () => {
    const { pacer, pauses } = pacing(false);
    await pacer.afterPage(40);
    await pacer.afterPage(400);
    expect(pauses).toEqual([]);
  });

  it('pauses in proportion to the page while the node is busy, so the export takes its share of the time', async () => {
    const { pacer, pauses } = pacing(true);
    await pacer.afterPage(40);
    await pacer.afterPage(10);
    expect(pauses).toEqual([(40 * (1 - DEFAULT_EXPORT_SHARE)) / DEFAULT_EXPORT_SHARE, (10 * (1 - DEFAULT_EXPORT_SHARE)) / DEFAULT_EXPORT_SHARE]);
    // The export's share of the time: page / (page + pause).
    expect(40 / (40 + pauses[0]!)).toBeCloseTo(DEFAULT_EXPORT_SHARE);
  });

  it('takes the share it is given, never stops for more than two seconds at once, and does not pause at a share of one', async () => {
    const half = pacing(true, 0.5);
    await half.pacer.afterPage(30);
    expect(half.pauses).toEqual([30]);
    const slowPage = pacing(true);
    await slowPage.pacer.afterPage(60_000);
    expect(slowPage.pauses).toEqual([2000]);
    const whole = pacing(true, 1);
    await whole.pacer.afterPage(30);
    expect(whole.pauses).toEqual([]);
  });
});
