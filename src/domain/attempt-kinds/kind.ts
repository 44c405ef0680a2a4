/**
 * One attempt kind is one module here (its catalog schema, its description and its JSON for
 * `explain`) plus one runner in `strategies/` and one line in each of the two tables
 * (`attempt-kinds/index.ts`, `strategies/registry.ts`). Pure.
 */

/**
 * What a kind's parser may report through: the catalog loader's checker, which collects every
 * problem with its path (`sidecars[2].attempts[0].http.method`).
 */
export interface FieldCheck {
  fail(path: string, message: string): undefined;
  /** The value as a mapping with only `keys`, or undefined (reported). */
  mapping(v: unknown, path: string, keys: readonly string[], what: string): Record<string, unknown> | undefined;
  integer(v: unknown, path: string, min: number, max: number): number | undefined;
  /** A non-empty list, or undefined (reported). */
  list(v: unknown, path: string, rule: string): unknown[] | undefined;
  /** How a value is shown after "got" in a message: `the string "15020"`, `a list`. */
  describe(v: unknown): string;
  /** A string quoted for a message. */
  quote(s: string): string;
}

/** A kind's own fields of an attempt, without the ones every attempt has (timeout, rules). */
export interface AttemptKind<A extends { readonly kind: string }> {
  /** The key of the catalog's attempt mapping, and the `kind` of the parsed attempt. */
  readonly name: A['kind'];
  /** Its fields in the catalog, for messages: `{method, port, path}`. */
  readonly synopsis: string;
  /** Validates the value under the kind's key; reports problems through `check`. */
  parse(v: unknown, path: string, check: FieldCheck): Omit<A, 'timeoutSeconds'> | undefined;
  /** One line for events and logs: `http POST :4191/shutdown`. */
  describe(a: A): string;
  /** What `explain` prints of it. */
  json(a: A): Record<string, unknown>;
}
