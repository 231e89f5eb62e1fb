import assert from 'node:assert/strict';
import { renderText } from '../../../src/pipeline/intake/render.js';
import { findLinks, linkAt, rewriteLinks, trackableLinks } from '../../../src/correlation/links.js';
import type { MarketingContext } from '../../../src/correlation/index.js';
import { openLink, parseCallbackKeys, tileDigest } from '../../../src/correlation/token.js';

const keys = parseCallbackKeys(`k1:${Buffer.alloc(32, 1).toString('base64')}`, 'test');
const ACTIVITY: MarketingContext = {
  kind: 'marketing',
  activityId: '0a4e28ba-2fa1-11d2-883f-0016d3cca427',
  activityRowId: '1b4e28ba-2fa1-11d2-883f-0016d3cca427',
  contactId: '6f1c2a5e-0000-4000-8000-00000000c0de',
  journeyId: 'a0a0a0a0-1111-4222-8333-444455556666',
  iterationId: 'b0b0b0b0-1111-4222-8333-444455556666',
  entityType: 'cr123_smsmessage',
  entityId: 'c0c0c0c0-1111-4222-8333-444455556666',
};

describe('findLinks', () => {
  const cases: Array<[string, string, string[]]> = [
    ['none', 'Hello {firstname}', []],
    ['one https link', 'Go to https://shop.example/sale now', ['https://shop.example/sale']],
    ['http, query and fragment', 'x http://a.example/p?q=1&r=2#top y', ['http://a.example/p?q=1&r=2#top']],
    [
      'trailing punctuation is not part of it',
      'See https://a.example/x. Or https://b.example/y!',
      ['https://a.example/x', 'https://b.example/y'],
    ],
    ['a closing bracket without an opening one', '(https://a.example/x)', ['https://a.example/x']],
    ['brackets inside the URL stay', 'https://en.example/wiki/A_(b) end', ['https://en.example/wiki/A_(b)']],
    ['case-insensitive scheme', 'HTTPS://A.EXAMPLE', ['HTTPS://A.EXAMPLE']],
    ['a bare scheme is no link', 'https:// and ftp://x.example', []],
    [
      'at the start and end, several',
      'https://a.example https://b.example',
      ['https://a.example', 'https://b.example'],
    ],
  ];
  for (const [name, text, urls] of cases) {
    it(name, () => {
      const found = findLinks(text);
      assert.deepEqual(
        found.map((l) => l.url),
        urls,
      );
      for (const l of found) assert.equal(text.slice(l.start, l.end), l.url);
    });
  }

  it('a long run of punctuation inside a URL costs no more than as many letters (no backtracking)', () => {
    const dots = `See https://a.example/${'.'.repeat(64_000)}a. Bye`;
    const letters = `See https://a.example/${'b'.repeat(64_000)}a. Bye`;
    assert.deepEqual(
      findLinks(dots).map((l) => l.url.length),
      ['https://a.example/'.length + 64_001],
    );
    const fastest = (text: string): number => {
      let best = Infinity;
      for (let i = 0; i < 3; i++) {
        const start = process.hrtime.bigint();
        findLinks(text);
        best = Math.min(best, Number(process.hrtime.bigint() - start));
      }
      return best;
    };
    // Linear: about the same; the backtracking pattern took thousands of times longer on the dots.
    const ratio = fastest(dots) / fastest(letters);
    assert.ok(ratio < 20, `dots took ${ratio.toFixed(1)}x as long as letters`);
  });

  it('a link with a placeholder is not trackable', () => {
    const found = findLinks('Your page: https://shop.example/u/{contactid}?ref=sms and https://shop.example/help');
    assert.deepEqual(
      found.map((l) => [l.url, l.trackable]),
      [
        ['https://shop.example/u/{contactid}?ref=sms', false],
        ['https://shop.example/help', true],
      ],
    );
  });
});

describe('rewriteLinks / linkAt', () => {
  const template =
    'Hi {firstname}, see https://shop.example/sale. Yours: https://shop.example/u/{contactid} or https://shop.example/help';

  it('replaces each trackable link with a tracked link that opens to its activity row, contact, tile and index', () => {
    const out = rewriteLinks(template, ACTIVITY, 'https://relay.example/', keys);
    const opened = {
      ok: true,
      activityRowId: ACTIVITY.activityRowId,
      contactId: ACTIVITY.contactId,
      tile: tileDigest(ACTIVITY),
      keyId: 'k1',
    };
    const tracked = [...out.matchAll(/https:\/\/relay\.example\/l\/([A-Za-z0-9_-]+)/g)].map((m) => m[1] as string);
    assert.equal(tracked.length, 2);
    assert.deepEqual(
      tracked.map((code) => openLink(code, keys)),
      [
        { ...opened, linkIndex: 0 },
        { ...opened, linkIndex: 1 },
      ],
    );
    assert.match(
      out,
      /^Hi \{firstname\}, see https:\/\/relay\.example\/l\/[^ ]+\. Yours: https:\/\/shop\.example\/u\/\{contactid\} or https:\/\/relay\.example\/l\/[^ ]+$/,
    );
  });

  it('linkAt finds the original link again from the template', () => {
    assert.equal(linkAt(template, 0), 'https://shop.example/sale');
    assert.equal(linkAt(template, 1), 'https://shop.example/help');
    assert.equal(linkAt(template, 2), undefined);
    assert.equal(linkAt(template, -1), undefined);
    assert.deepEqual(trackableLinks(template), ['https://shop.example/sale', 'https://shop.example/help']);
  });

  it('rendering after rewriting fills placeholders and leaves tracked links alone; a link from a value is not tracked', () => {
    const out = renderText(rewriteLinks(template, ACTIVITY, 'https://relay.example', keys), {
      firstname: 'https://evil.example',
      contactid: 'c-1',
    });
    assert.match(out, /^Hi https:\/\/evil\.example, see https:\/\/relay\.example\/l\//);
    assert.match(out, /https:\/\/shop\.example\/u\/c-1 or https:\/\/relay\.example\/l\//);
  });

  it('a text without trackable links comes back unchanged', () => {
    assert.equal(rewriteLinks('Hello {firstname}', ACTIVITY, 'https://relay.example', keys), 'Hello {firstname}');
    assert.equal(
      rewriteLinks('https://x.example/{a}', ACTIVITY, 'https://relay.example', keys),
      'https://x.example/{a}',
    );
  });

  it('tracks at most 256 links; the rest stay as written', () => {
    const many = Array.from({ length: 258 }, (_, i) => `https://a.example/${i}`).join(' ');
    const out = rewriteLinks(many, ACTIVITY, 'https://r.example', keys);
    assert.equal((out.match(/https:\/\/r\.example\/l\//g) ?? []).length, 256);
    assert.ok(out.endsWith('https://a.example/256 https://a.example/257'));
    assert.equal(linkAt(many, 255), 'https://a.example/255');
    assert.equal(linkAt(many, 256), undefined);
  });
});
