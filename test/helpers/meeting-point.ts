/**
 * Makes a race certain instead of hoped for. Two requests sent at once over
 * HTTP rarely reach the line that decides the race at the same moment: one
 * finishes its slow hash first and the other arrives after the commit. A
 * meeting point holds each call of a method it is put on until `parties`
 * calls have arrived, then lets them on together, so both have read what they
 * read before either writes. It can sit on several objects (two nodes' stores)
 * at once.
 */
export class MeetingPoint {
  private waiting: (() => void)[] = [];
  private readonly restores: (() => void)[] = [];
  /** Groups that met so far. */
  met = 0;

  constructor(private readonly parties = 2) {}

  /** Resolves when this call and `parties - 1` others have arrived. */
  arrive(): Promise<void> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      if (this.waiting.length === this.parties) {
        const group = this.waiting;
        this.waiting = [];
        this.met++;
        for (const go of group) go();
      }
    });
  }

  /** Holds every call of `object[method]` (those `when` picks, if given) at this point until `restore()`. */
  holdCalls<T extends object>(object: T, method: keyof T & string, when: (...args: any[]) => boolean = () => true): this {
    const original = object[method] as (...args: unknown[]) => unknown;
    const hasOwn = Object.hasOwn(object, method);
    const arrive = () => this.arrive();
    (object as Record<string, unknown>)[method] = async function (this: unknown, ...args: unknown[]) {
      if (when(...args)) await arrive();
      return original.apply(this, args);
    };
    this.restores.push(() => {
      if (hasOwn) (object as Record<string, unknown>)[method] = original;
      else delete (object as Record<string, unknown>)[method];
    });
    return this;
  }

  /** Puts every held method back. */
  restore(): void {
    for (const undo of this.restores.splice(0)) undo();
  }
}
