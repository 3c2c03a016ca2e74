/**
 * Runs independent reads together (one round trip to each store instead of
 * one after another) and answers as if they had run in the order given: the
 * first failure in that order is the one thrown, whichever happened first, so
 * which refusal a request gets never depends on which store was faster.
 */
export async function allInOrder<T extends readonly unknown[]>(work: { readonly [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const results = await Promise.allSettled(work);
  for (const result of results) if (result.status === 'rejected') throw result.reason;
  return results.map((result) => (result as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
