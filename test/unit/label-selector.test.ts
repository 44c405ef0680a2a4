import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseLabelSelector, SelectorError } from '../../src/domain/label-selector.ts';

describe('parseLabelSelector', () => {
  const valid: [string, Record<string, string>, boolean][] = [
    ['nais.io/naisjob=true', { 'nais.io/naisjob': 'true' }, true],
    ['nais.io/naisjob=true', { 'nais.io/naisjob': 'false' }, false],
    ['nais.io/naisjob==true', { 'nais.io/naisjob': 'true' }, true],
    ['a!=b', {}, true],
    ['a!=b', { a: 'b' }, false],
    ['a', { a: '' }, true],
    ['!a', { a: 'x' }, false],
    ['env in (prod, dev)', { env: 'dev' }, true],
    ['env notin (prod,dev)', { env: 'dev' }, false],
    ['env notin (prod)', {}, true],
    ['tier, app=x', { tier: 'a', app: 'x' }, true],
    ['n>3', { n: '4' }, true],
    ['n<3', { n: '4' }, false],
    ['a=', { a: '' }, true],
    ['', { anything: 'x' }, true],
  ];
  for (const [selector, labels, want] of valid) {
    it(`${JSON.stringify(selector)} ${want ? 'matches' : 'does not match'} ${JSON.stringify(labels)}`, () => {
      assert.equal(parseLabelSelector(selector).matches(labels), want);
    });
  }

  const invalid: [string, RegExp][] = [
    ['nais.io/naisjob=true,', /empty requirement/],
    ['a=b=c', /not a single label value/],
    ['a in ()', /needs at least one value/],
    ['a in (b', /unbalanced/],
    ['a) ', /unbalanced/],
    ['-bad=x', /key "-bad"/],
    ['Nais.IO/x=y', /prefix must be a DNS subdomain/],
    [`a=${'v'.repeat(64)}`, /at most 63 characters/],
    ['n>x', /needs an integer/],
    ['a b', /is not a requirement/],
  ];
  for (const [selector, why] of invalid) {
    it(`refuses ${JSON.stringify(selector)}`, () => {
      assert.throws(
        () => parseLabelSelector(selector),
        (err: unknown) => err instanceof SelectorError && why.test(err.message),
      );
    });
  }
});
