import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { DEFAULT_CATALOG_PATH, loadCatalog } from '../../src/config/catalog-file.ts';
import { CHART } from './chart-assets.ts';

const CHART_CATALOG = `${CHART}/files/sidecars.yaml`;

describe('the chart carries the sidecar catalog', () => {
  it('files/sidecars.yaml is byte for byte config/sidecars.yaml (run charts/sync-catalog.sh)', () => {
    const source = readFileSync(DEFAULT_CATALOG_PATH, 'utf8');
    const copy = readFileSync(CHART_CATALOG, 'utf8');
    assert.ok(copy === source, 'charts/hahaha/files/sidecars.yaml differs from config/sidecars.yaml: run charts/sync-catalog.sh and commit both');
  });

  it('the copy is a valid catalog', () => {
    const catalog = loadCatalog(CHART_CATALOG);
    assert.ok(catalog.entries.length > 0);
  });

  it('the ConfigMap template embeds the copy, not an inline catalog', () => {
    const helpers = readFileSync(`${CHART}/templates/_helpers.tpl`, 'utf8');
    assert.match(helpers, /\.Files\.Get "files\/sidecars\.yaml"/);
    const values = readFileSync(`${CHART}/values.yaml`, 'utf8');
    assert.match(values, /^ {2}content: ""$/m, 'catalog.content must default to empty so the shipped catalog is used');
  });
});
