// The tamper-evident audit chain: whatever is edited, removed or reordered, findChainBreak names where.
import { describe, expect, it } from 'vitest';
import {
  AUDIT_HASH_VERSION,
  AuditChainWalker,
  GENESIS_HASH,
  auditKeyId,
  auditKeysField,
  auditRowHash,
  canonicalJson,
  checkAuditAnchor,
  checkAuditAnchorSignature,
  deterministicId,
  findChainBreak,
  sha256Hex,
  signAuditAnchor,
  toAuditChainContent,
  type AuditChainContent,
  type AuditKey,
  type ChainedAuditRow,
} from '../src/index.js';

function contentAt(seq: number, tenant = 'tenant-a'): AuditChainContent {
  return {
    hash_version: AUDIT_HASH_VERSION,
    audit_id: `audit-${seq}`,
    created_at: new Date(Date.UTC(2025, 0, 1, 0, 0, seq, 300)).toISOString(),
    tenant_id: tenant,
    chain_seq: seq,
    task_id: `task-${seq % 3}`,
    event_type: seq % 2 === 0 ? 'SUPERVISOR_ALLOWED' : 'SUPERVISOR_BLOCKED',
    level: seq % 2 === 0 ? 'info' : 'warn',
    decision_id: `decision-${seq}`,
    event_id: `evt-${seq}`,
    source_event_ts: new Date(Date.UTC(2025, 0, 1, 0, 0, seq)).toISOString(),
    processed_at: new Date(Date.UTC(2025, 0, 1, 0, 0, seq, 250)).toISOString(),
    payload: {
      reason: `row ${seq}`,
      findings: [{ code: 'RISK_ERROR_RATE', kind: 'RISK' }],
      nested: { b: 2, a: 1 },
    },
  };
}

/** Chains contents in order from `previousHash`, as the writer does. */
function chain(contents: AuditChainContent[], previousHash = GENESIS_HASH): ChainedAuditRow[] {
  const rows: ChainedAuditRow[] = [];
  let prev = previousHash;
  for (const content of contents) {
    const row_hash = auditRowHash(content, prev);
    rows.push({ ...content, prev_hash: prev, row_hash });
    prev = row_hash;
  }
  return rows;
}

function buildChain(length: number): ChainedAuditRow[] {
  return chain(Array.from({ length }, (_, i) => contentAt(i + 1)));
}

describe('audit chain', () => {
  it('should verify an untouched chain', () => {
    expect(findChainBreak(buildChain(10))).toBeUndefined();
  });

  it('should verify an empty page', () => {
    expect(findChainBreak([])).toBeUndefined();
  });

  it('should start the chain from the genesis hash', () => {
    expect(GENESIS_HASH).toMatch(/^0{64}$/);
    const rows = chain([contentAt(1)], 'f'.repeat(64));
    expect(findChainBreak(rows)).toMatchObject({ audit_id: 'audit-1', chain_seq: 1 });
  });

  describe('when a row is edited', () => {
    it.each<[string, (row: ChainedAuditRow) => void]>([
      ['payload', (row) => (row.payload = { ...row.payload, reason: 'nothing to see' })],
      ['nested payload', (row) => (row.payload = { ...row.payload, findings: [] })],
      ['added payload key', (row) => (row.payload = { ...row.payload, approved_by: 'mallory' })],
      ['level', (row) => (row.level = 'info')],
      ['processed_at', (row) => (row.processed_at = '2025-01-01T00:00:04.000Z')],
      ['source_event_ts', (row) => (row.source_event_ts = null)],
      ['event_type', (row) => (row.event_type = 'SUPERVISOR_ALLOWED')],
      ['decision_id', (row) => (row.decision_id = 'decision-x')],
      ['event_id', (row) => (row.event_id = null)],
      ['task_id', (row) => (row.task_id = 'task-other')],
      ['tenant_id', (row) => (row.tenant_id = 'tenant-b')],
      ['audit_id', (row) => (row.audit_id = 'audit-99')],
      ['created_at', (row) => (row.created_at = '2025-01-01T00:00:03.301Z')],
      ['hash_version (to one that does not exist)', (row) => (row.hash_version = 3)],
      ['hash_version (down to the pre-upgrade format)', (row) => (row.hash_version = 1)],
    ])('should name the row whose %s changed', (_field, edit) => {
      const rows = buildChain(6);
      edit(rows[2]!);
      expect(findChainBreak(rows)).toEqual({
        audit_id: rows[2]!.audit_id, // as the row now reads: `audit-99` when the id itself was edited
        chain_seq: 3,
        reason: expect.stringContaining('edited'),
      });
    });

    it('should name the next row when the edited row was re-hashed to hide it', () => {
      const rows = buildChain(6);
      const forged = { ...rows[2]!, payload: { reason: 'forged' } };
      const { prev_hash: _prev, row_hash: _hash, ...content } = forged;
      rows[2] = { ...forged, row_hash: auditRowHash(content, forged.prev_hash) };
      expect(findChainBreak(rows)).toMatchObject({
        audit_id: 'audit-4',
        chain_seq: 4,
        reason: expect.stringContaining('prev_hash'),
      });
    });
  });

  describe('when rows are removed or reordered', () => {
    it.each([
      ['the first row', 0, 'audit-2'],
      ['a middle row', 3, 'audit-5'],
      ['the second to last row', 4, 'audit-6'],
    ])('should name the row after the gap when %s is deleted', (_name, index, named) => {
      const rows = buildChain(6);
      rows.splice(index, 1);
      expect(findChainBreak(rows)).toMatchObject({
        audit_id: named,
        reason: expect.stringContaining('missing'),
      });
    });

    it('should break when two rows are swapped', () => {
      const rows = buildChain(6);
      [rows[1], rows[2]] = [rows[2]!, rows[1]!];
      expect(findChainBreak(rows)).toMatchObject({ audit_id: 'audit-3', chain_seq: 3 });
    });

    it('should break when two rows are swapped and renumbered', () => {
      const rows = buildChain(6);
      const second = rows[1]!;
      const third = rows[2]!;
      rows[1] = { ...third, chain_seq: 2 };
      rows[2] = { ...second, chain_seq: 3 };
      expect(findChainBreak(rows)).toMatchObject({ audit_id: 'audit-3', chain_seq: 2 });
    });

    it('should break when a deleted row is hidden by renumbering the rest', () => {
      const rows = buildChain(6);
      rows.splice(2, 1);
      const renumbered = rows.map((row, i) => ({ ...row, chain_seq: i + 1 }));
      expect(findChainBreak(renumbered)).toMatchObject({ audit_id: 'audit-4', chain_seq: 3 });
    });
  });

  describe('across pages', () => {
    const rows = buildChain(10);
    const firstPage = rows.slice(0, 4);
    const secondPage = rows.slice(4);
    const last = firstPage[firstPage.length - 1]!;

    it('should continue from the last verified row of the previous page', () => {
      expect(findChainBreak(firstPage)).toBeUndefined();
      expect(
        findChainBreak(secondPage, { chain_seq: last.chain_seq, row_hash: last.row_hash }),
      ).toBeUndefined();
    });

    it('should break when a later page is checked from the genesis', () => {
      expect(findChainBreak(secondPage)).toMatchObject({ audit_id: 'audit-5' });
    });

    it('should break when the previous hash handed over is wrong', () => {
      expect(findChainBreak(secondPage, { chain_seq: last.chain_seq, row_hash: GENESIS_HASH })).toMatchObject(
        { audit_id: 'audit-5', reason: expect.stringContaining('prev_hash') },
      );
    });

    it('should find an edit on a later page', () => {
      const tampered = secondPage.map((row) =>
        row.audit_id === 'audit-8' ? { ...row, level: 'error' } : row,
      );
      expect(findChainBreak(tampered, { chain_seq: last.chain_seq, row_hash: last.row_hash })).toMatchObject({
        audit_id: 'audit-8',
      });
    });
  });

  describe('toAuditChainContent', () => {
    it('should hash a row read back from the database like the row that was written', () => {
      const written = { ...contentAt(5), audit_id: '5' };
      const fromDb = toAuditChainContent({
        ...written,
        chain_seq: '5',
        source_event_ts: new Date(written.source_event_ts!),
        processed_at: new Date(written.processed_at),
        created_at: new Date(written.created_at),
        audit_id: 5,
        hash_version: '2',
        payload: {
          nested: { a: 1, b: 2 },
          findings: [{ kind: 'RISK', code: 'RISK_ERROR_RATE' }],
          reason: 'row 5',
        },
      });
      expect(fromDb).toEqual(written);
      expect(auditRowHash(fromDb, GENESIS_HASH)).toBe(auditRowHash(written, GENESIS_HASH));
    });

    it('should keep a missing source timestamp as null', () => {
      const content = toAuditChainContent({
        ...contentAt(1),
        source_event_ts: null,
        processed_at: new Date(0),
        created_at: new Date(0),
      });
      expect(content).toMatchObject({ source_event_ts: null, processed_at: '1970-01-01T00:00:00.000Z' });
    });
  });
});

describe('audit chain across the hash-version upgrade', () => {
  const v1At = (seq: number): AuditChainContent => ({ ...contentAt(seq), hash_version: 1 });

  it('should hash version-1 rows exactly as before the upgrade (audit_id and created_at not covered)', () => {
    const content = v1At(1);
    const { hash_version: _v, audit_id: _id, created_at: _c, ...old } = content;
    expect(auditRowHash(content, GENESIS_HASH)).toBe(sha256Hex(GENESIS_HASH + '\n' + canonicalJson(old)));
    expect(
      auditRowHash({ ...content, audit_id: 'other', created_at: '1999-01-01T00:00:00.000Z' }, GENESIS_HASH),
    ).toBe(auditRowHash(content, GENESIS_HASH));
  });

  it('should verify a chain of version-1 rows continued by version-2 rows', () => {
    expect(findChainBreak(chain([v1At(1), v1At(2), contentAt(3), contentAt(4)]))).toBeUndefined();
  });

  it('should name a version-1 row after version-2 rows, even one hashed consistently', () => {
    const rows = chain([v1At(1), contentAt(2), v1At(3), contentAt(4)]);
    expect(findChainBreak(rows)).toMatchObject({
      audit_id: 'audit-3',
      reason: expect.stringContaining('version-1'),
    });
  });
});

describe('AuditChainWalker', () => {
  it('should report independent problems once each, carrying on from what is stored', () => {
    const rows = buildChain(10);
    rows[2] = { ...rows[2]!, payload: { edited: true } };
    rows.splice(6, 1);
    const walker = new AuditChainWalker();
    walker.push(rows);
    expect(walker.problems.map((p) => [p.kind, p.audit_id])).toEqual([
      ['edited', 'audit-3'],
      ['gap', 'audit-8'],
    ]);
  });

  it('should name a duplicate position and accept the next row linking to either', () => {
    const rows = buildChain(4);
    const twin = { ...rows[1]!, audit_id: 'audit-2b', payload: { twin: true } };
    const { prev_hash: _p, row_hash: _h, ...content } = twin;
    rows.splice(2, 0, { ...twin, row_hash: auditRowHash(content, twin.prev_hash) });
    const walker = new AuditChainWalker();
    walker.push(rows);
    expect(walker.problems).toEqual([
      expect.objectContaining({ kind: 'duplicate', audit_id: 'audit-2b', chain_seq: 2 }),
    ]);
  });

  it('should keep the first problems and count the rest', () => {
    const walker = new AuditChainWalker(undefined, 2);
    walker.push(buildChain(6).map((row) => ({ ...row, level: 'error' })));
    expect(walker.problems).toHaveLength(2);
    expect(walker.omitted).toBe(4);
    expect(walker.failed).toBe(true);
  });
});

describe('audit anchors', () => {
  const key: AuditKey = { id: auditKeyId('k'.repeat(32)), secret: 'k'.repeat(32) };
  const other: AuditKey = { id: auditKeyId('o'.repeat(32)), secret: 'o'.repeat(32) };
  const rows = buildChain(5);
  const head = rows[4]!;
  const anchor = signAuditAnchor(key, {
    tenant_id: 'tenant-a',
    chain_seq: 5,
    row_hash: head.row_hash,
    anchored_at: '2025-01-02T00:00:00.000Z',
  });

  it('should verify an anchor signed with a configured key', () => {
    expect(checkAuditAnchorSignature([other, key], anchor)).toBe('valid');
    expect(checkAuditAnchor([key], anchor, head)).toBeUndefined();
  });

  it.each<[string, Partial<typeof anchor>]>([
    ['tenant', { tenant_id: 'tenant-b' }],
    ['position', { chain_seq: 4 }],
    ['hash', { row_hash: 'f'.repeat(64) }],
    ['time', { anchored_at: '2025-01-03T00:00:00.000Z' }],
    ['signature', { signature: '0'.repeat(64) }],
  ])('should call an anchor whose %s was edited forged', (_field, edit) => {
    expect(checkAuditAnchorSignature([key], { ...anchor, ...edit })).toBe('forged');
  });

  it('should not verify an anchor signed with a key that is not configured, or recomputed without the key', () => {
    expect(checkAuditAnchorSignature([other], anchor)).toBe('unknown_key');
    const guessed = signAuditAnchor({ id: key.id, secret: 'not the key, but as long as it' }, anchor);
    expect(checkAuditAnchorSignature([key], guessed)).toBe('forged');
  });

  it('should name a chain that no longer hashes to its anchor, and an anchored row that is gone', () => {
    expect(checkAuditAnchor([key], anchor, { ...head, row_hash: 'a'.repeat(64) })).toMatchObject({
      kind: 'anchor_mismatch',
    });
    expect(checkAuditAnchor([key], anchor, undefined)).toMatchObject({ kind: 'anchor_row_missing' });
  });

  it('should read WARDEN_AUDIT_KEY as a list whose first key signs', () => {
    const a = 'a'.repeat(40);
    const b = 'b'.repeat(64);
    expect(auditKeysField.parse(undefined)).toEqual([]);
    expect(auditKeysField.parse('')).toEqual([]);
    expect(auditKeysField.parse(` ${a} , ${b}`)).toEqual([
      { id: auditKeyId(a), secret: a },
      { id: auditKeyId(b), secret: b },
    ]);
    expect(auditKeysField.safeParse('too-short').success).toBe(false);
    expect(auditKeyId(a)).toMatch(/^[0-9a-f]{16}$/);
    expect(auditKeyId(a)).not.toContain(a.slice(0, 8));
  });
});

describe('canonicalJson', () => {
  it.each([
    ['flat keys in any order', { b: 1, a: 2 }, { a: 2, b: 1 }],
    [
      'nested keys in any order',
      { outer: { z: [1, { y: 1, x: 2 }], a: null } },
      { outer: { a: null, z: [1, { x: 2, y: 1 }] } },
    ],
    ['an undefined member or its absence', { a: 1, gone: undefined }, { a: 1 }],
  ])('should give the same text for %s', (_name, left, right) => {
    expect(canonicalJson(left)).toBe(canonicalJson(right));
  });

  it('should sort keys and drop whitespace', () => {
    expect(canonicalJson({ b: [2, 1], a: { d: 'x', c: true } })).toBe('{"a":{"c":true,"d":"x"},"b":[2,1]}');
  });

  it('should keep array order significant', () => {
    expect(canonicalJson([1, 2])).not.toBe(canonicalJson([2, 1]));
  });

  it('should serialize dates as ISO strings', () => {
    expect(canonicalJson({ at: new Date(0) })).toBe('{"at":"1970-01-01T00:00:00.000Z"}');
  });

  it('should give the same row hash whatever the order of payload keys', () => {
    const content = contentAt(1);
    const reordered = { ...content, payload: Object.fromEntries(Object.entries(content.payload).reverse()) };
    expect(auditRowHash(reordered, GENESIS_HASH)).toBe(auditRowHash(content, GENESIS_HASH));
  });
});

describe('deterministicId', () => {
  it('should give the same UUID-shaped id for the same parts', () => {
    const id = deterministicId('decision', 'tenant-a', 'evt-1');
    expect(id).toBe(deterministicId('decision', 'tenant-a', 'evt-1'));
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('should not confuse parts whose concatenation is the same', () => {
    expect(deterministicId('ab', 'c')).not.toBe(deterministicId('a', 'bc'));
    expect(deterministicId('decision', 'tenant-a', 'evt-1')).not.toBe(
      deterministicId('decision', 'tenant-b', 'evt-1'),
    );
  });
});
