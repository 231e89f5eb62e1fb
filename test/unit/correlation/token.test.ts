import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import sinon from 'sinon';
import { isConfigError } from '../../../src/errors.js';
import type { MarketingContext } from '../../../src/correlation/index.js';
import {
  openContext,
  openLink,
  parseCallbackKeys,
  sealContext,
  sealLink,
  tileDigest,
  type CallbackKeys,
} from '../../../src/correlation/token.js';
import { legacyLinkCode } from '../pipeline/callbacks/fakes.js';

const secret = (fill: number): string => Buffer.alloc(32, fill).toString('base64');
const ENV = `k2:${secret(2)},k1:${secret(1)}`;

const context: MarketingContext = {
  kind: 'marketing',
  activityId: '0a4e28ba-2fa1-11d2-883f-0016d3cca427',
  activityRowId: '1b4e28ba-2fa1-11d2-883f-0016d3cca427',
  contactId: '6f1c2a5e-0000-4000-8000-00000000c0de',
  journeyId: 'a0a0a0a0-1111-4222-8333-444455556666',
  iterationId: 'b0b0b0b0-1111-4222-8333-444455556666',
  entityType: 'cr123_smsmessage',
  entityId: 'c0c0c0c0-1111-4222-8333-444455556666',
};

function flip(token: string, at: number): string {
  const b = Buffer.from(token, 'base64url');
  b[at] = (b[at] as number) ^ 0x01;
  return b.toString('base64url');
}

describe('callback keys', () => {
  it('reads id:secret pairs: the first signs, all verify', () => {
    const keys = parseCallbackKeys(ENV, 'environment variable CALLBACK_SIGNING_KEYS');
    assert.equal(keys.sign.id, 'k2');
    assert.deepEqual(
      keys.verify.map((k) => k.id),
      ['k2', 'k1'],
    );
    assert.deepEqual(keys.verify[1]?.secret, Buffer.alloc(32, 1));
  });

  it('accepts base64url secrets and spaces around entries', () => {
    const keys = parseCallbackKeys(` a : ${Buffer.alloc(32, 0xfb).toString('base64url')} `, 'X');
    assert.deepEqual(keys.sign.secret, Buffer.alloc(32, 0xfb));
  });

  const bad: Array<[string, string | undefined, RegExp]> = [
    ['missing', undefined, /found nothing/],
    ['empty', '  ', /found nothing/],
    ['no colon', 'abc', /entry 1 without ':'/],
    ['a bad id', `bad id!:${secret(1)}`, /entry 1 with id "bad id!"/],
    ['an empty entry', `a:${secret(1)},`, /entry 2 without ':' \(empty\)/],
    ['a duplicate id', `a:${secret(1)},a:${secret(2)}`, /id 'a' twice/],
    ['a short secret', `a:${Buffer.alloc(16).toString('base64')}`, /key 'a' with a 16-byte secret/],
    ['a secret that is not base64', 'a:not*base64', /key 'a' whose secret is not base64/],
  ];
  for (const [name, value, message] of bad) {
    it(`refuses ${name} with a ConfigError naming the variable, never the secret`, () => {
      assert.throws(
        () => parseCallbackKeys(value, 'environment variable CALLBACK_SIGNING_KEYS'),
        (err: unknown) => {
          assert.ok(isConfigError(err));
          assert.match(
            err.message,
            /environment variable CALLBACK_SIGNING_KEYS: callbacks\.signingKeys: expected 'id:base64secret'/,
          );
          assert.match(err.message, message);
          assert.ok(!err.message.includes(secret(1)) && !err.message.includes(secret(2)), err.message);
          return true;
        },
      );
    });
  }
});

describe('context tokens', () => {
  const keys = parseCallbackKeys(ENV, 'test');

  it('round trip: context and channel come back, with the key that signed', () => {
    const token = sealContext(context, 'sms', keys);
    assert.match(token, /^[A-Za-z0-9_-]+$/);
    assert.deepEqual(openContext(token, keys), { ok: true, context, channel: 'sms', keyId: 'k2' });
  });

  it('with a send time (version 2): the time comes back too; a version 1 token (none) still opens, without it', () => {
    const sentAt = Date.UTC(2026, 11, 7, 17, 0, 0, 123);
    const token = sealContext(context, 'sms', keys, sentAt);
    assert.deepEqual(openContext(token, keys), { ok: true, context, channel: 'sms', keyId: 'k2', sentAt });
    assert.equal(Buffer.from(token, 'base64url')[0], 2);
    assert.equal(Buffer.from(sealContext(context, 'sms', keys), 'base64url')[0], 1);
    assert.equal(openContext(sealContext(context, 'sms', keys, 0), keys).ok, true);
    for (const bad of [-1, 1.5, 2 ** 48, Number.NaN])
      assert.throws(() => sealContext(context, 'sms', keys, bad), RangeError, String(bad));
  });

  it('a send time is signed: a changed byte of it does not open', () => {
    const token = sealContext(context, 'sms', keys, 1_796_663_135_237);
    const buf = Buffer.from(token, 'base64url');
    // The time is the body's last 6 bytes, before the 16-byte MAC.
    for (let at = buf.length - 22; at < buf.length - 16; at++) {
      const changed = Buffer.from(buf);
      changed[at] = (changed[at] as number) ^ 1;
      assert.deepEqual(
        openContext(changed.toString('base64url'), keys),
        { ok: false, reason: 'bad-signature' },
        `byte ${at}`,
      );
    }
  });

  it('is compact: GUIDs take 16 bytes each (well under 250 characters)', () => {
    assert.ok(
      sealContext(context, 'sms', keys, Date.now()).length < 210,
      sealContext(context, 'sms', keys, Date.now()),
    );
    assert.ok(sealContext(context, 'sms', keys).length < 200, sealContext(context, 'sms', keys));
  });

  it('keeps ids that are not canonical GUIDs exactly (upper case, other strings)', () => {
    const odd = { ...context, activityId: context.activityId.toUpperCase(), contactId: 'contact-7', entityId: 'ÄÖ' };
    const opened = openContext(sealContext(odd, 'tg', keys), keys);
    assert.deepEqual(opened, { ok: true, context: odd, channel: 'tg', keyId: 'k2' });
  });

  it('tampering with any byte of the body or the MAC → bad-signature', () => {
    const token = sealContext(context, 'sms', keys);
    const length = Buffer.from(token, 'base64url').length;
    const bodyStart = 1 + 1 + 2 + 2; // version, key id length, 'k2', body length
    for (let at = bodyStart; at < length; at += 1) {
      assert.deepEqual(openContext(flip(token, at), keys), { ok: false, reason: 'bad-signature' }, `byte ${at}`);
    }
  });

  it('tampering with any header byte is refused too (malformed or unknown-key)', () => {
    const token = sealContext(context, 'sms', keys);
    assert.deepEqual(openContext(flip(token, 0), keys), { ok: false, reason: 'malformed' }, 'version');
    assert.deepEqual(openContext(flip(token, 1), keys), { ok: false, reason: 'malformed' }, 'key id length');
    assert.deepEqual(openContext(flip(token, 2), keys), { ok: false, reason: 'unknown-key' }, 'key id');
    assert.deepEqual(openContext(flip(token, 4), keys), { ok: false, reason: 'malformed' }, 'body length');
    assert.deepEqual(openContext(flip(token, 5), keys), { ok: false, reason: 'malformed' }, 'body length');
  });

  it('tampering with any character is refused (no second spelling of a token)', () => {
    const token = sealContext(context, 'sms', keys);
    for (let at = 0; at < token.length; at += 1) {
      const c = token[at] === 'A' ? 'B' : 'A';
      const opened = openContext(token.slice(0, at) + c + token.slice(at + 1), keys);
      assert.equal(opened.ok, false, `character ${at}`);
    }
  });

  it('truncated or extended → malformed', () => {
    const token = sealContext(context, 'sms', keys);
    for (const cut of [1, 2, 4, 8, 22, token.length - 1]) {
      assert.deepEqual(
        openContext(token.slice(0, token.length - cut), keys),
        { ok: false, reason: 'malformed' },
        `cut ${cut}`,
      );
    }
    const longer = Buffer.concat([Buffer.from(token, 'base64url'), Buffer.from([0])]).toString('base64url');
    assert.deepEqual(openContext(longer, keys), { ok: false, reason: 'malformed' });
  });

  it('not a token at all → malformed', () => {
    for (const s of ['', 'not a token', '====', 'x'.repeat(5000), '%41']) {
      assert.deepEqual(openContext(s, keys), { ok: false, reason: 'malformed' }, s.slice(0, 20));
    }
  });

  it('signed with a rotated-out key → unknown-key', () => {
    const old = parseCallbackKeys(`k0:${secret(9)}`, 'test');
    assert.deepEqual(openContext(sealContext(context, 'sms', old), keys), { ok: false, reason: 'unknown-key' });
  });

  it('same key id, other secret → bad-signature', () => {
    const forged = parseCallbackKeys(`k2:${secret(7)}`, 'test');
    assert.deepEqual(openContext(sealContext(context, 'sms', forged), keys), { ok: false, reason: 'bad-signature' });
  });

  it('two keys verify during a rotation: tokens from the old and the new signer both open', () => {
    const before = parseCallbackKeys(`k1:${secret(1)}`, 'test');
    const after = parseCallbackKeys(`k2:${secret(2)}`, 'test');
    const oldToken = sealContext(context, 'sms', before);
    const newToken = sealContext(context, 'sms', after);
    const both: CallbackKeys = keys;
    const keyId = (token: string): string | undefined => {
      const opened = openContext(token, both);
      return opened.ok ? opened.keyId : undefined;
    };
    assert.equal(keyId(oldToken), 'k1');
    assert.equal(keyId(newToken), 'k2');
    assert.equal(openContext(oldToken, after).ok, false);
  });

  it('compares MACs in constant time (crypto.timingSafeEqual)', () => {
    const spy = sinon.spy(crypto, 'timingSafeEqual');
    try {
      const token = sealContext(context, 'sms', keys);
      openContext(token, keys);
      openContext(flip(token, 20), keys);
      assert.equal(spy.callCount, 2);
    } finally {
      spy.restore();
    }
  });

  it('a link code does not open as a context token (and back)', () => {
    const code = sealLink(context, 0, keys);
    assert.equal(openContext(code, keys).ok, false);
    assert.equal(openLink(sealContext(context, 'sms', keys), keys).ok, false);
  });
});

describe('link codes', () => {
  const keys = parseCallbackKeys(ENV, 'test');

  it('round trip: activity row, contact, tile digest and link index, in 76 characters with GUIDs', () => {
    const code = sealLink(context, 3, keys);
    // version 1 + key id 1+2 + row 17 + contact 17 + tile 6 + index 1 + MAC 12 = 57 bytes.
    assert.equal(code.length, 76, code);
    assert.deepEqual(openLink(code, keys), {
      ok: true,
      activityRowId: context.activityRowId,
      contactId: context.contactId,
      tile: tileDigest(context),
      linkIndex: 3,
      keyId: 'k2',
    });
    assert.deepEqual(openLink(sealLink({ ...context, activityRowId: 'not-a-guid', contactId: 'c' }, 255, keys), keys), {
      ok: true,
      activityRowId: 'not-a-guid',
      contactId: 'c',
      tile: tileDigest(context),
      linkIndex: 255,
      keyId: 'k2',
    });
  });

  it('the tile digest: 8 characters, the same for every row of a tile, different when any shared field differs', () => {
    const digest = tileDigest(context);
    assert.match(digest, /^[A-Za-z0-9_-]{8}$/);
    assert.equal(tileDigest({ ...context, activityRowId: 'other', contactId: 'other' } as MarketingContext), digest);
    for (const field of ['activityId', 'journeyId', 'iterationId', 'entityType', 'entityId'] as const)
      assert.notEqual(tileDigest({ ...context, [field]: `${context[field].slice(0, -1)}0` }), digest, field);
    // Length-prefixed: moving characters from one field to the next changes it.
    assert.notEqual(
      tileDigest({ ...context, activityId: 'ab', journeyId: 'c' }),
      tileDigest({ ...context, activityId: 'a', journeyId: 'bc' }),
    );
  });

  it('a code written before the relay keyed on the row (version 1) opens as msdyncrm_activityid, and cannot pass as a row code', () => {
    const old = legacyLinkCode(context.activityId, 2, keys.verify[1]!);
    assert.deepEqual(openLink(old, keys), { ok: true, activityId: context.activityId, linkIndex: 2, keyId: 'k1' });
    // The version is under the MAC: a version-1 code relabelled as 2 (or back) does not verify.
    const relabelled = Buffer.from(old, 'base64url');
    relabelled[0] = 2;
    assert.deepEqual(openLink(relabelled.toString('base64url'), keys), { ok: false, reason: 'bad-signature' });
  });

  it('a code of version 2 (the row alone, in SMS already sent) still opens to its row; relabelled as another version it does not verify', () => {
    const old = legacyLinkCode(context.activityRowId, 2, keys.verify[1]!, 2);
    assert.equal(old.length, 46);
    assert.deepEqual(openLink(old, keys), {
      ok: true,
      activityRowId: context.activityRowId,
      linkIndex: 2,
      keyId: 'k1',
    });
    for (const version of [1, 3]) {
      const relabelled = Buffer.from(old, 'base64url');
      relabelled[0] = version;
      assert.equal(openLink(relabelled.toString('base64url'), keys).ok, false, `as version ${version}`);
    }
    const current = Buffer.from(sealLink(context, 2, keys), 'base64url');
    for (const version of [1, 2]) {
      current[0] = version;
      assert.equal(openLink(current.toString('base64url'), keys).ok, false, `version 3 as ${version}`);
    }
  });

  it('refuses an index out of range', () => {
    assert.throws(() => sealLink(context, 256, keys), RangeError);
    assert.throws(() => sealLink(context, -1, keys), RangeError);
  });

  it('tampering with any byte of the body or the MAC → bad-signature; header → malformed or unknown-key', () => {
    const code = sealLink(context, 1, keys);
    const length = Buffer.from(code, 'base64url').length;
    for (let at = 5; at < length; at += 1) {
      if (at === 21) continue; // the contact's id tag: below
      assert.deepEqual(openLink(flip(code, at), keys), { ok: false, reason: 'bad-signature' }, `byte ${at}`);
    }
    assert.deepEqual(openLink(flip(code, 0), keys), { ok: false, reason: 'malformed' });
    assert.deepEqual(openLink(flip(code, 2), keys), { ok: false, reason: 'unknown-key' });
    assert.deepEqual(openLink(flip(code, 4), keys), { ok: false, reason: 'malformed' }, 'the row id tag');
    assert.deepEqual(openLink(flip(code, 21), keys), { ok: false, reason: 'malformed' }, 'the contact id tag');
  });

  it('truncated → malformed; rotated-out key → unknown-key; old and new keys both verify', () => {
    const code = sealLink(context, 1, keys);
    for (let cut = 1; cut < code.length; cut += 5) {
      assert.deepEqual(
        openLink(code.slice(0, code.length - cut), keys),
        { ok: false, reason: 'malformed' },
        `cut ${cut}`,
      );
    }
    assert.deepEqual(openLink(sealLink(context, 1, parseCallbackKeys(`zz:${secret(3)}`, 't')), keys), {
      ok: false,
      reason: 'unknown-key',
    });
    assert.equal(openLink(sealLink(context, 1, parseCallbackKeys(`k1:${secret(1)}`, 't')), keys).ok, true);
  });

  it('compares MACs in constant time (crypto.timingSafeEqual)', () => {
    const spy = sinon.spy(crypto, 'timingSafeEqual');
    try {
      openLink(sealLink(context, 1, keys), keys);
      assert.equal(spy.callCount, 1);
    } finally {
      spy.restore();
    }
  });
});
