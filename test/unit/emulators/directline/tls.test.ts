import assert from 'node:assert/strict';
import { createSecureContext } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { selfSignedCertificate } from '../../../../src/emulators/directline/tls.js';

describe('Direct Line emulator: its self-signed certificate', () => {
  it('is valid DER whatever its random serial: OpenSSL loads 1,024 of them (a serial with a leading zero byte once broke one in 512)', function () {
    this.timeout(60_000);
    for (let i = 0; i < 1024; i += 1) {
      const cert = selfSignedCertificate(['localhost']);
      assert.doesNotThrow(() => createSecureContext({ key: cert.key, cert: cert.cert }), `certificate ${i}`);
      assert.match(new X509Certificate(cert.cert).serialNumber, /^[0-9A-F]+$/);
    }
  });
});
