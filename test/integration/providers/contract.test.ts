import assert from 'node:assert/strict';
import { createProvider } from '../../../src/providers/index.js';
import { ManualClock, providerError, SIGNING_SECRET, simulators } from './helpers.js';

const DEFINITION = 'b7c0e3a2-1111-4f00-8000-000000000001';
const request = (n: number, to = `+4917000001${String(n).padStart(3, '0')}`) => ({
  idempotencyKey: `2222222${n}-aaaa-4bbb-8ccc-000000000003`,
  from: 'sender-1',
  to,
  text: `Hello ${n}`,
  parts: { title: 'Hi', text: `Hello ${n}` },
  channelDefinitionId: DEFINITION,
});
const OTHER_SECRET = `whsec_${Buffer.from('some other secret, thirty-two b!').toString('base64')}`;

describe('contract adapter against the contract simulator', () => {
  const start = simulators();
  const contract = (base: string, signingSecret = SIGNING_SECRET) =>
    createProvider({ type: 'contract', url: `${base}/journeys/messages`, signingSecret }, { timeoutMs: 5000 });

  it('sends signed: the simulator verifies the signature and logs the message parts', async () => {
    const sim = await start({ contract: { secrets: [SIGNING_SECRET] } });
    const result = await contract(sim.urls.contract).send(request(1));
    assert.equal(result.status, 'Sent');
    const logged = sim.messages({ provider: 'contract' });
    assert.equal(logged.length, 1);
    assert.deepEqual(
      {
        id: logged[0]?.providerMessageId,
        key: logged[0]?.idempotencyKey,
        parts: logged[0]?.parts,
        def: logged[0]?.channelDefinitionId,
        verified: logged[0]?.verified,
        sender: logged[0]?.sender,
      },
      {
        id: result.providerMessageId,
        key: request(1).idempotencyKey,
        parts: { title: 'Hi', text: 'Hello 1' },
        def: DEFINITION,
        verified: true,
        sender: 'sender-1',
      },
    );
  });

  it('a rotated secret: the sender signs with new and old, a simulator on the old one accepts', async () => {
    const sim = await start({ contract: { secrets: [SIGNING_SECRET] } });
    await contract(sim.urls.contract, `${OTHER_SECRET} ${SIGNING_SECRET}`).send(request(2));
    assert.equal(sim.messages({ provider: 'contract' }).length, 1);
  });

  it('a wrong secret is ProviderUnauthorized (401), and nothing is logged', async () => {
    const sim = await start({ contract: { secrets: [SIGNING_SECRET] } });
    const err = await providerError(contract(sim.urls.contract, OTHER_SECRET).send(request(3)));
    assert.deepEqual([err.code, err.upstream?.status], ['ProviderUnauthorized', 401]);
    assert.equal(sim.messages({ provider: 'contract' }).length, 0);
  });

  it('the same RequestId twice gives one logged message and the same MessageId', async () => {
    const sim = await start({ contract: { secrets: [SIGNING_SECRET] } });
    const provider = contract(sim.urls.contract);
    const first = await provider.send(request(4));
    const second = await provider.send(request(4));
    assert.equal(second.providerMessageId, first.providerMessageId);
    assert.equal(sim.messages({ provider: 'contract' }).length, 1);
  });

  it('a refused recipient (NotSent) is ProviderRejected', async () => {
    const sim = await start({ contract: { notSentRecipients: ['+4917000001005'] } });
    const err = await providerError(contract(sim.urls.contract).send(request(5)));
    assert.deepEqual([err.code, err.upstream?.code, err.retryable], ['ProviderRejected', 'NotSent', false]);
    assert.equal(sim.messages({ provider: 'contract' }).length, 0);
  });

  it("over the sender's limit is ProviderRateLimited with Retry-After in ms; a 500 is ProviderUnavailable", async () => {
    const clock = new ManualClock(Date.now());
    const sim = await start({ clock: clock.read, contract: { perSender: 1 } });
    const provider = contract(sim.urls.contract);
    await provider.send(request(6));
    const limited = await providerError(provider.send(request(7)));
    assert.deepEqual(
      [limited.code, limited.retryAfterMs, limited.upstream?.status],
      ['ProviderRateLimited', 1000, 429],
    );
    clock.advance(1000);
    await provider.send(request(7));
    sim.setFaults({ contract: { errorNext: 1, errorStatus: 500 } });
    assert.equal((await providerError(provider.send(request(8)))).code, 'ProviderUnavailable');
    assert.equal(sim.messages({ provider: 'contract' }).length, 2);
  });
});
