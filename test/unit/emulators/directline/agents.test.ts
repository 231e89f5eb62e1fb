import assert from 'node:assert/strict';
import sinon from 'sinon';
import { AGENT_DEFAULTS, OmnichannelAgents } from '../../../../src/emulators/directline/agents.js';
import type { Activity } from '../../../../src/emulators/directline/conversations.js';

describe('Direct Line emulator: the agents’ timing (fake timers)', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: Date.UTC(2026, 0, 1), toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  });
  afterEach(() => clock.restore());

  function agents(options: Partial<typeof AGENT_DEFAULTS> = {}) {
    const posted: Array<{ at: number; activity: Activity }> = [];
    const typing: number[] = [];
    const a = new OmnichannelAgents(
      { ...AGENT_DEFAULTS, ...options },
      {
        post: (_id, activity) => {
          posted.push({ at: Date.now(), activity });
          return true;
        },
        typing: () => typing.push(Date.now()),
        blobUrl: (name) => `http://blobs/${name}`,
        clock: Date.now,
      },
    );
    return { a, posted, typing };
  }
  const message = (text: string): Activity => ({
    type: 'message',
    id: text,
    from: { id: 'c' },
    text,
    channelData: { channeltype: 'sms' },
  });

  it('greets at once, answers each message replyDelayMs after it and never before the reply it follows', () => {
    const { a, posted, typing } = agents({ replyDelayMs: 1000, endAfterTurns: 0, attachmentEvery: 0 });
    const t0 = Date.now();
    a.customer('c1', message('one'));
    clock.tick(100);
    a.customer('c1', message('two'));
    assert.deepEqual(
      posted.map((p) => [p.at - t0, p.activity.text?.slice(0, 9)]),
      [[0, 'Thank you']],
    );
    clock.tick(899);
    assert.equal(posted.length, 1, 'no reply before its delay');
    clock.tick(1);
    clock.tick(100);
    assert.deepEqual(
      posted.slice(1).map((p) => [p.at - t0, p.activity.text]),
      [
        [1000, 'Agent 1 (SMS support) got your message 1: "one"'],
        [1100, 'Agent 1 (SMS support) got your message 2: "two"'],
      ],
    );
    assert.deepEqual(
      typing.map((t) => t - t0),
      [1000, 1100],
    );
    assert.equal(a.pending(), 0);
  });

  it('closes after endAfterTurns: the last reply, the survey link, endOfConversation, in that order and at the same time', () => {
    const { a, posted } = agents({ replyDelayMs: 50, endAfterTurns: 1 });
    a.customer('c1', message('only'));
    clock.tick(50);
    assert.deepEqual(
      posted.map((p) => p.activity.type + ':' + (p.activity.text ?? '').slice(0, 14)),
      ['message:Thank you for ', 'message:Agent 1 (SMS s', 'message:Please tell us', 'endOfConversation:'],
    );
    a.close();
    a.customer('c2', message('after close'));
    clock.tick(1000);
    assert.equal(posted.length, 4, 'closed agents post nothing');
  });
});
