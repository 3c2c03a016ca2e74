import { describe, expect, it } from 'vitest';
import { allInOrder } from '../../src/all-in-order.ts';

describe('allInOrder', () => {
  const later = <T>(ms: number, value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));
  const failLater = (ms: number, why: string) => new Promise<never>((_, reject) => setTimeout(() => reject(new Error(why)), ms));

  it('answers every value, in the order given', async () => {
    await expect(allInOrder([later(20, 'a'), later(1, 2), Promise.resolve(true)] as const)).resolves.toEqual(['a', 2, true]);
  });

  it('throws the first failure in the order given, not the first to happen, once all have settled', async () => {
    let lastSettled = false;
    const last = later(30, 'x').then((v) => {
      lastSettled = true;
      return v;
    });
    await expect(allInOrder([later(5, 1), failLater(20, 'first in order'), failLater(1, 'first in time'), last] as const)).rejects.toThrow('first in order');
    expect(lastSettled).toBe(true);
  });
});
