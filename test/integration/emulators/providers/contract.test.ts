import assert from 'node:assert/strict';
import { contractPayload, contractSend, ManualClock, SECRET, signed, simulators } from './helpers.js';

const CHANNEL_DEFINITION = '44444444-4444-4444-8444-444444444444';

describe('provider simulators: custom channel contract', () => {
  const start = simulators();

  it('answers the contract response {ChannelDefinitionId, MessageId, RequestId, Status: "Sent"} and logs the message parts', async () => {
    const sim = await start();
    const payload = {
      ...contractPayload('req-1'),
      Message: { text: 'Hello', subject: 'Offer' },
      MarketingAppContext: { journeyId: 'j1' },
    };
    const res = await contractSend(sim.url, payload, { channel: 'custom-sms' });
    assert.equal(res.status, 200);
    assert.equal(res.body['ChannelDefinitionId'], CHANNEL_DEFINITION);
    assert.equal(res.body['RequestId'], 'req-1');
    assert.equal(res.body['Status'], 'Sent');
    assert.match(String(res.body['MessageId']), /^[0-9a-f-]{36}$/);
    const [m] = sim.messages({ provider: 'contract' });
    assert.equal(m!.channel, 'custom-sms');
    assert.equal(m!.path, '/contract/custom-sms/messages');
    assert.equal(m!.sender, 'sender-1');
    assert.equal(m!.recipient, '+4915112340001');
    assert.equal(m!.text, 'Hello\nOffer');
    assert.deepEqual(m!.parts, { text: 'Hello', subject: 'Offer' });
    assert.equal(m!.idempotencyKey, 'req-1');
    assert.equal(m!.providerMessageId, res.body['MessageId']);
    assert.equal(m!.signed, false);
  });

  it('400 for a payload that breaks the contract, naming each problem', async () => {
    const sim = await start();
    const res = await contractSend(sim.url, { RequestId: '', From: 'a', To: 'b', Message: { text: 3 } });
    assert.equal(res.status, 400);
    const error = res.body['error'] as { code: string; message: string };
    assert.equal(error.code, 'InvalidPayload');
    assert.match(error.message, /RequestId must be a non-empty string; Message.text must be a string/);
    const badDefinition = await contractSend(sim.url, { ...contractPayload('r0'), ChannelDefinitionId: 7 });
    assert.match(
      (badDefinition.body['error'] as { message: string }).message,
      /ChannelDefinitionId must be a non-empty string when given/,
    );
    const notJson = await fetch(`${sim.url}/contract/sms/messages`, { method: 'POST', body: 'nope' });
    assert.equal(notJson.status, 400);
    assert.equal(sim.stats().contract.rejected['400'], 3);
  });

  it('ChannelDefinitionId is optional (outbound-marketing channels): the answer then leaves it out', async () => {
    const sim = await start();
    const { ChannelDefinitionId: _omitted, ...payload } = contractPayload('req-om');
    const res = await contractSend(sim.url, payload);
    assert.equal(res.status, 200);
    assert.deepEqual(Object.keys(res.body).sort(), ['MessageId', 'RequestId', 'Status']);
    assert.equal(sim.messages()[0]!.channelDefinitionId, undefined);
  });

  it('RequestId is the idempotency key: a repeat returns the first answer and adds no log entry', async () => {
    const sim = await start();
    const first = await contractSend(sim.url, contractPayload('req-1'));
    const again = await contractSend(sim.url, contractPayload('req-1'));
    assert.deepEqual(again.body, first.body);
    const otherChannel = await contractSend(sim.url, contractPayload('req-1'), { channel: 'other' });
    assert.notEqual(otherChannel.body['MessageId'], first.body['MessageId'], 'keys are per channel');
    assert.equal(sim.messages().length, 2);
    assert.equal(sim.stats().contract.duplicates, 1);
  });

  it('answers Status "NotSent" for a refused recipient (configured or marked), and the same again for a repeat', async () => {
    const sim = await start({ contract: { notSentRecipients: ['+4915100000666'] } });
    const refused = await contractSend(sim.url, contractPayload('req-1', '+4915100000666'));
    assert.deepEqual(refused.body, { ChannelDefinitionId: CHANNEL_DEFINITION, RequestId: 'req-1', Status: 'NotSent' });
    sim.block('contract', '+4915100000777');
    assert.equal((await contractSend(sim.url, contractPayload('req-2', '+4915100000777'))).body['Status'], 'NotSent');
    sim.unblock('contract', '+4915100000777');
    assert.equal(
      (await contractSend(sim.url, contractPayload('req-2', '+4915100000777'))).body['Status'],
      'NotSent',
      'the first answer stands',
    );
    assert.equal((await contractSend(sim.url, contractPayload('req-3', '+4915100000777'))).body['Status'], 'Sent');
    assert.equal(sim.stats().contract.rejected['NotSent'], 2);
    assert.equal(sim.messages().length, 1);
  });

  it('per-sender rate limit: 429 with Retry-After in seconds, not logged, counted', async () => {
    const clock = new ManualClock();
    const sim = await start({ clock: clock.read, contract: { perSender: 2, perSenderBySender: { vip: 3 } } });
    assert.equal((await contractSend(sim.url, contractPayload('r1'))).status, 200);
    assert.equal((await contractSend(sim.url, contractPayload('r2'))).status, 200);
    const refused = await contractSend(sim.url, contractPayload('r3'));
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get('retry-after'), '1');
    assert.equal((refused.body['error'] as { code: string }).code, 'TooManyRequests');
    for (let i = 0; i < 3; i++)
      assert.equal((await contractSend(sim.url, contractPayload(`v${i}`, 'x', 'vip'))).status, 200);
    clock.advance(1000);
    assert.equal(
      (await contractSend(sim.url, contractPayload('r3'))).status,
      200,
      'the refused RequestId may be sent again',
    );
    const stats = sim.stats().contract;
    assert.equal(stats.senders['sender-1']!.rateLimited, 1);
    assert.equal(stats.senders['sender-1']!.accepted, 3);
    assert.equal(stats.senders['vip']!.maxInAnyWindow, 3);
  });

  describe('Standard Webhooks signatures (secrets configured)', () => {
    const OLD = `whsec_${Buffer.from('the previous secret, rotated out').toString('base64')}`;

    it('accepts a valid signature by any configured secret and logs it as verified', async () => {
      const clock = new ManualClock();
      const sim = await start({ clock: clock.read, contract: { secrets: [SECRET, OLD] } });
      const now = Math.floor(clock.now / 1000);
      assert.equal(
        (await contractSend(sim.url, contractPayload('r1'), { sign: { secret: SECRET, timestampSeconds: now } }))
          .status,
        200,
      );
      assert.equal(
        (await contractSend(sim.url, contractPayload('r2'), { sign: { secret: OLD, timestampSeconds: now - 299 } }))
          .status,
        200,
      );
      // Several signatures in one header (rotation on the sender's side): one valid entry is enough.
      const body = JSON.stringify(contractPayload('r3'));
      const good = signed(body, SECRET, 'msg_3', now)['webhook-signature']!;
      const res = await fetch(`${sim.url}/contract/sms/messages`, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'webhook-id': 'msg_3',
          'webhook-timestamp': String(now),
          'webhook-signature': `v1,AAAA ${good}`,
        },
        body,
      });
      assert.equal(res.status, 200);
      assert.deepEqual(
        sim.messages().map((m) => [m.signed, m.verified]),
        [
          [true, true],
          [true, true],
          [true, true],
        ],
      );
    });

    it('401 for a missing, wrong or stale signature, or a body changed after signing', async () => {
      const clock = new ManualClock();
      const sim = await start({ clock: clock.read, contract: { secrets: [SECRET] } });
      const now = Math.floor(clock.now / 1000);
      const other = `whsec_${Buffer.from('somebody else entirely, 32 bytes').toString('base64')}`;
      const body = JSON.stringify(contractPayload('r1'));
      const tampered = async (): Promise<number> => {
        const headers = signed(body, SECRET, 'msg_1', now);
        const res = await fetch(`${sim.url}/contract/sms/messages`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', ...headers },
          body: body.replace('Hello', 'Hullo'),
        });
        return res.status;
      };
      const cases: Array<[Promise<{ status: number; body: Record<string, unknown> }>, RegExp]> = [
        [contractSend(sim.url, contractPayload('r1')), /missing webhook-id/],
        [
          contractSend(sim.url, contractPayload('r1'), { sign: { secret: other, timestampSeconds: now } }),
          /no webhook-signature entry matches/,
        ],
        [
          contractSend(sim.url, contractPayload('r1'), { sign: { secret: SECRET, timestampSeconds: now - 301 } }),
          /301 s from now \(tolerance 300 s\)/,
        ],
        [
          contractSend(sim.url, contractPayload('r1'), { sign: { secret: SECRET, timestampSeconds: now + 400 } }),
          /tolerance 300 s/,
        ],
      ];
      for (const [call, reason] of cases) {
        const res = await call;
        assert.equal(res.status, 401);
        const error = res.body['error'] as { code: string; message: string };
        assert.equal(error.code, 'InvalidSignature');
        assert.match(error.message, reason);
      }
      assert.equal(await tampered(), 401);
      assert.equal(sim.messages().length, 0);
      assert.equal(sim.stats().contract.rejected['401'], 5);
    });
  });
});
