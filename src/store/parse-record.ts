import { Type, type Static, type TSchema } from 'typebox';
import { Compile, type Validator } from 'typebox/compile';

/**
 * A record read back from a store, if it has the shape this release writes;
 * anything else (a record of an older or newer release during a rolling
 * upgrade, or damage) reads as absent. Parse, don't cast: a caller never
 * works on a shape it only assumed.
 */
export function parseRecord<S extends TSchema>(schema: S, value: unknown): Static<S> | undefined {
  return value !== undefined && value !== null && validatorFor(schema).Check(value) ? (value as Static<S>) : undefined;
}

// Record schemas are module constants, so each is compiled once: a compiled check is several times
// cheaper than interpreting the schema, and records are read on every step of every sign-in.
const validators = new WeakMap<TSchema, Validator>();

function validatorFor(schema: TSchema): Validator {
  let validator = validators.get(schema);
  if (!validator) {
    validator = Compile(schema) as unknown as Validator;
    validators.set(schema, validator);
  }
  return validator;
}

/** A JSON column or value read back: its parsed value if it is JSON of the expected shape, else undefined. */
export function parseJson<S extends TSchema>(schema: S, text: string): Static<S> | undefined {
  try {
    return parseRecord(schema, JSON.parse(text));
  } catch {
    return undefined;
  }
}

/** A JSON object column whose keys belong to its writer (details of an audit entry, a credential's public data). */
export const JsonObject = Type.Record(Type.String(), Type.Unknown());

/** Scalar records (a time, a count, an id), built once rather than per read on hot paths. */
export const NumberRecord = Type.Number();
export const StringRecord = Type.String();
