import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { formatWatermark, parseWatermark } from '../../../../src/emulators/directline/assumptions.js';
import { FaultPlan, faultsSpecProblems } from '../../../../src/emulators/directline/faults.js';
import { startDirectLineEmulator } from '../../../../src/emulators/directline/index.js';
import { selfSignedCertificate } from '../../../../src/emulators/directline/tls.js';
import { parseUpload } from '../../../../src/emulators/directline/upload.js';

describe('Direct Line emulator: its parts', () => {
  it('selfSignedCertificate makes a P-256 certificate for every name given, its own trust anchor, valid now', () => {
    const { cert } = selfSignedCertificate(['127.0.0.1', 'localhost', '::1', 'relay.test'], 2);
    const x = new X509Certificate(cert);
    assert.equal(x.subject, 'CN=127.0.0.1');
    assert.equal(x.subjectAltName, 'IP Address:127.0.0.1, DNS:localhost, IP Address:0:0:0:0:0:0:0:1, DNS:relay.test');
    assert.equal(x.ca, true);
    assert.ok(x.verify(x.publicKey), 'self-signed');
    assert.equal(x.checkHost('relay.test'), 'relay.test');
    assert.equal(x.checkIP('::1'), '::1');
    const now = Date.now();
    assert.ok(Date.parse(x.validFrom) <= now && now < Date.parse(x.validTo));
    assert.ok(Date.parse(x.validTo) - now < 3 * 86_400_000, 'for the days asked');
    assert.notEqual(
      new X509Certificate(selfSignedCertificate(['localhost']).cert).fingerprint256,
      x.fingerprint256,
      'a new key each time',
    );
  });

  it('watermarks are opaque, belong to their conversation and read back to their position', () => {
    const w = formatWatermark('AbCdEfGhIj', 42);
    assert.ok(Number.isNaN(Number(w)));
    assert.equal(parseWatermark('AbCdEfGhIj', w), 42);
    assert.equal(parseWatermark('ZzZzZzZzZz', w), undefined, 'not this conversation’s');
    assert.equal(parseWatermark('AbCdEfGhIj', '0000a-42'), undefined);
  });

  it('faultsSpecProblems names each bad key; FaultPlan answers the burst, then errorNext, then nothing', () => {
    assert.deepEqual(faultsSpecProblems({ directline: { errorRate: 2, colour: 1 }, bots: {}, seed: 1.5 }), [
      'faults.directline.colour: unknown fault setting (known: latencyMs, rateLimitBurst, errorNext, errorRate, errorStatus, errorAfterAccept)',
      'faults.directline.errorRate: expected a fraction from 0 to 1, found 2',
      'faults.bots: unknown scope (expected directline or identity, or seed)',
      'faults.seed: expected an integer, found 1.5',
    ]);
    const plan = new FaultPlan(1);
    assert.throws(
      () => plan.set({ identity: { errorNext: -1 } }),
      /faults\.identity\.errorNext: expected an integer >= 0, found -1/,
    );
    plan.set({
      directline: { rateLimitBurst: { count: 1, retryAfterSeconds: 2 }, errorNext: 1, errorAfterAccept: true },
    });
    assert.deepEqual(plan.decide('directline').action, { kind: 'rateLimit', retryAfterSeconds: 2 });
    assert.deepEqual(plan.decide('directline').action, { kind: 'error', status: 502, afterAccept: true });
    assert.deepEqual(plan.decide('directline').action, { kind: 'none' });
    assert.deepEqual(plan.decide('identity').action, { kind: 'none' }, 'scopes are apart');
    plan.set({ identity: { errorRate: 0.5, errorStatus: 503 }, seed: 7 });
    const first = Array.from({ length: 200 }, () => plan.decide('identity').action.kind);
    plan.set({ seed: 7 });
    assert.deepEqual(
      Array.from({ length: 200 }, () => plan.decide('identity').action.kind),
      first,
      'the same seed, the same faults',
    );
    const errors = first.filter((k) => k === 'error').length;
    assert.ok(errors > 60 && errors < 140, `about half of 200 calls fail, found ${errors}`);
  });

  it('parseUpload reads one raw file, or multipart parts with an activity part, binary-safe', () => {
    const bytes = Buffer.from([0, 255, 13, 10, 45, 45, 1]);
    assert.deepEqual(parseUpload('image/jpeg', 'name="file"; filename="eel.jpg"', bytes), {
      files: [{ contentType: 'image/jpeg', name: 'eel.jpg', data: bytes }],
    });
    const body = Buffer.concat([
      Buffer.from(
        '--XYZ\r\nContent-Type: application/octet-stream\r\nContent-Disposition: form-data; name="file"; filename*=UTF-8\'\'r%C3%A9sum%C3%A9.bin\r\n\r\n',
      ),
      bytes,
      Buffer.from(
        '\r\n--XYZ\r\nContent-Type: application/vnd.microsoft.activity\r\n\r\n{"type":"message","text":"t"}\r\n--XYZ--\r\n',
      ),
    ]);
    const parsed = parseUpload('multipart/form-data; boundary="XYZ"', undefined, body);
    assert.deepEqual(parsed.activity, { type: 'message', text: 't' });
    assert.equal(parsed.files[0]!.name, 'résumé.bin');
    assert.deepEqual(parsed.files[0]!.data, bytes);
    assert.throws(
      () =>
        parseUpload(
          'multipart/form-data; boundary=XYZ',
          undefined,
          Buffer.from('--XYZ\r\nContent-Type: application/vnd.microsoft.activity\r\n\r\n{}\r\n--XYZ--'),
        ),
      /no file part/,
    );
    assert.throws(() => parseUpload('text/plain', undefined, Buffer.alloc(0)), /no content/);
  });

  it('the identity certificate covers loopback and the identityHostNames given', async () => {
    const em = await startDirectLineEmulator({ identityHostNames: ['directline.test'] });
    try {
      const x = new X509Certificate(em.identityCa);
      assert.equal(x.checkHost('directline.test'), 'directline.test');
      assert.equal(x.checkHost('localhost'), 'localhost');
      assert.equal(x.checkIP('127.0.0.1'), '127.0.0.1');
      assert.equal(x.checkHost('elsewhere.test'), undefined);
    } finally {
      await em.close();
    }
  });

  it('startDirectLineEmulator refuses bad options, naming each', async () => {
    await assert.rejects(
      startDirectLineEmulator({ pageSize: 0 }),
      /startDirectLineEmulator: pageSize must be an integer >= 1, found 0/,
    );
    await assert.rejects(
      startDirectLineEmulator({ secrets: ['short'] }),
      /secrets must be a non-empty list of strings of 8 characters or more/,
    );
    await assert.rejects(
      startDirectLineEmulator({
        agents: {
          channels: [
            { channelType: 'sms', workstream: 'a' },
            { channelType: 'sms', workstream: 'b' },
          ],
        },
      }),
      /agents\.channels\[1\]\.channelType 'sms' is used twice/,
    );
    await assert.rejects(
      startDirectLineEmulator({ identity: { apps: [{ clientId: 'not-a-guid', secrets: [] }] } }),
      /identity\.apps\[0\]\.clientId must be a GUID, found "not-a-guid"/,
    );
    await assert.rejects(
      startDirectLineEmulator({ faults: { directline: { errorStatus: 404 as 502 } } }),
      /faults\.directline\.errorStatus: expected 500, 502 or 503, found 404/,
    );
  });
});
