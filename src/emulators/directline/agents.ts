/**
 * The Omnichannel side of the bridge, played by simulated agents: a conversation is routed to its channel's
 * workstream by the `channelData` of its first customer message, gets the channel's automated greeting in the
 * channel's language, then one scripted agent reply per customer message after a delay (in order), an attachment on
 * some replies where agents may send them, and after the configured number of turns the survey link and
 * `endOfConversation`. Everything is recorded for `/_simulator/conversations`.
 */
import type { Activity } from './conversations.js';

/** A custom messaging channel as Omnichannel's admin centre configures it. */
export interface SimulatedChannel {
  /** The `channelData.channeltype` that routes to this channel (e.g. `sms`, `telegram`, `contoso`). */
  channelType: string;
  workstream: string;
  /** BCP 47 tag of the greeting and the survey message (`en-US`, `fr-FR`, `de-DE`, `es-ES`, `nl-NL`; others fall back to English). @defaultValue 'en-US' */
  language?: string;
  /** The automated greeting; @defaultValue the language's built-in text */
  greeting?: string;
  /** "Customers can send file attachments". @defaultValue true */
  customerAttachments?: boolean;
  /** "Agents can send file attachments". @defaultValue true */
  agentAttachments?: boolean;
  /** The post-conversation survey link; none: the conversation ends without one. @defaultValue undefined */
  surveyUrl?: string;
}

export interface AgentOptions {
  /** The channels the agents serve. @defaultValue AGENT_DEFAULTS.channels (sms and telegram, en-US) */
  channels?: SimulatedChannel[];
  /** Delay of each agent reply after the customer message it answers (replies keep their order), ms. @defaultValue 200 */
  replyDelayMs?: number;
  /** Customer messages answered before the agents close the conversation (survey, then `endOfConversation`); 0: never. @defaultValue 3 */
  endAfterTurns?: number;
  /** Every n-th agent reply carries an attachment (a blob URL) on channels that allow agent attachments; 0: none. @defaultValue 2 */
  attachmentEvery?: number;
  /** Whether a `typing` activity precedes each reply on the stream. @defaultValue true */
  typing?: boolean;
}

export const AGENT_DEFAULTS: Required<AgentOptions> = {
  channels: [
    { channelType: 'sms', workstream: 'SMS support', language: 'en-US', surveyUrl: 'https://survey.example.com/s/sms' },
    {
      channelType: 'telegram',
      workstream: 'Telegram support',
      language: 'en-US',
      agentAttachments: true,
      surveyUrl: 'https://survey.example.com/s/telegram',
    },
  ],
  replyDelayMs: 200,
  endAfterTurns: 3,
  attachmentEvery: 2,
  typing: true,
};

const GREETINGS: Record<string, { greeting: string; survey: string }> = {
  en: {
    greeting: 'Thank you for contacting us. An agent will be with you shortly.',
    survey: 'Please tell us how we did:',
  },
  fr: {
    greeting: 'Merci de nous avoir contactés. Un agent va vous répondre sous peu.',
    survey: 'Dites-nous ce que vous en avez pensé :',
  },
  de: {
    greeting: 'Danke für Ihre Nachricht. Gleich meldet sich ein Mitarbeiter bei Ihnen.',
    survey: 'Bitte sagen Sie uns, wie zufrieden Sie waren:',
  },
  es: {
    greeting: 'Gracias por contactarnos. Un agente le atenderá en breve.',
    survey: 'Cuéntenos qué tal lo hicimos:',
  },
  nl: { greeting: 'Bedankt voor uw bericht. Een medewerker helpt u zo.', survey: 'Laat ons weten hoe we het deden:' },
};

function texts(language: string): { greeting: string; survey: string } {
  return GREETINGS[language.slice(0, 2).toLowerCase()] ?? GREETINGS['en']!;
}

/** One activity of a simulated conversation as the record shows it. */
export interface RecordedActivity {
  /** The Direct Line activity id (typing has none). */
  id?: string;
  direction: 'customer' | 'agent';
  type: string;
  text?: string;
  attachments?: Array<{ contentType?: string; contentUrl?: string; name?: string }>;
  /** What the agents did with a customer activity: answered, ignored (not routed, or after the end), or its attachments dropped. */
  handling?: 'answered' | 'unrouted' | 'afterEnd';
  time: number;
}

export interface ConversationRecord {
  conversationId: string;
  /** The first customer activity's routing fields, or null while none arrived. */
  routing: null | {
    channelType?: string;
    workstream?: string;
    language?: string;
    conversationContext?: unknown;
    customerContext?: unknown;
  };
  routed: boolean;
  greeted: boolean;
  turns: number;
  ended: boolean;
  surveyUrl?: string;
  postedAfterEnd: number;
  attachmentsDropped: number;
  agentAttachments: number;
  expired: boolean;
  activities: RecordedActivity[];
}

export interface AgentsDeps {
  /** Posts an activity from the agents into the conversation (false when the conversation is gone). */
  post: (conversationId: string, activity: Activity) => boolean;
  /** Pushes a typing activity on the conversation's stream. */
  typing: (conversationId: string, from: Activity['from']) => void;
  /** URL of a simulated blob the agents attach. */
  blobUrl: (name: string) => string;
  clock: () => number;
}

function channelDataOf(activity: Activity): Record<string, unknown> {
  const cd = activity.channelData;
  return typeof cd === 'object' && cd !== null && !Array.isArray(cd) ? (cd as Record<string, unknown>) : {};
}

export class OmnichannelAgents {
  readonly #o: Required<AgentOptions>;
  readonly #deps: AgentsDeps;
  readonly #records = new Map<string, ConversationRecord>();
  readonly #channels = new Map<string, SimulatedChannel>();
  /** When each conversation's last scheduled reply goes out (replies wait for the ones before them). */
  readonly #queueEnd = new Map<string, number>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #closed = false;

  constructor(options: Required<AgentOptions>, deps: AgentsDeps) {
    this.#o = options;
    this.#deps = deps;
    for (const ch of options.channels) this.#channels.set(ch.channelType, ch);
  }

  #record(conversationId: string): ConversationRecord {
    let r = this.#records.get(conversationId);
    if (!r) {
      r = {
        conversationId,
        routing: null,
        routed: false,
        greeted: false,
        turns: 0,
        ended: false,
        postedAfterEnd: 0,
        attachmentsDropped: 0,
        agentAttachments: 0,
        expired: false,
        activities: [],
      };
      this.#records.set(conversationId, r);
    }
    return r;
  }

  /** A conversation was started (recorded even before its first message). */
  started(conversationId: string): void {
    this.#record(conversationId);
  }

  expired(conversationId: string): void {
    const r = this.#records.get(conversationId);
    if (r) r.expired = true;
  }

  /** Recorded: an activity the agents posted (called back by the server once Direct Line stored it). */
  #posted(r: ConversationRecord, activity: Activity): void {
    r.activities.push({
      ...(activity.id === undefined ? {} : { id: activity.id }),
      direction: 'agent',
      type: activity.type,
      ...(activity.text === undefined ? {} : { text: activity.text }),
      ...(activity.attachments ? { attachments: activity.attachments } : {}),
      time: this.#deps.clock(),
    });
  }

  /** A customer activity stored by Direct Line: routed, recorded, answered. */
  customer(conversationId: string, activity: Activity): void {
    if (this.#closed) return;
    const r = this.#record(conversationId);
    const entry: RecordedActivity = {
      ...(activity.id === undefined ? {} : { id: activity.id }),
      direction: 'customer',
      type: activity.type,
      ...(activity.text === undefined ? {} : { text: activity.text }),
      ...(activity.attachments?.length
        ? {
            attachments: activity.attachments.map(({ contentType, contentUrl, name }) => ({
              contentType,
              contentUrl,
              name,
            })),
          }
        : {}),
      time: this.#deps.clock(),
    };
    r.activities.push(entry);
    if (activity.type !== 'message') return;
    if (r.ended) {
      r.postedAfterEnd += 1;
      entry.handling = 'afterEnd';
      return;
    }
    if (r.routing === null) {
      const cd = channelDataOf(activity);
      const channelType = typeof cd['channeltype'] === 'string' ? cd['channeltype'] : undefined;
      const ch = channelType === undefined ? undefined : this.#channels.get(channelType);
      r.routing = {
        ...(channelType === undefined ? {} : { channelType }),
        ...(ch ? { workstream: ch.workstream, language: ch.language ?? 'en-US' } : {}),
        conversationContext: cd['conversationcontext'],
        customerContext: cd['customercontext'],
      };
      r.routed = ch !== undefined;
    }
    const ch = r.routed ? this.#channels.get(r.routing.channelType!) : undefined;
    if (!ch) {
      entry.handling = 'unrouted';
      return;
    }
    entry.handling = 'answered';
    if (activity.attachments?.length && ch.customerAttachments === false) {
      r.attachmentsDropped += activity.attachments.length;
      delete entry.attachments;
    }
    const language = ch.language ?? 'en-US';
    if (!r.greeted) {
      r.greeted = true;
      this.#post(r, {
        type: 'message',
        from: { id: 'omnichannel', name: 'Automated message', role: 'bot' },
        text: ch.greeting ?? texts(language).greeting,
        locale: language,
      });
    }
    r.turns += 1;
    const turn = r.turns;
    const closing = this.#o.endAfterTurns > 0 && turn >= this.#o.endAfterTurns;
    if (closing) r.ended = true;
    const withAttachment =
      this.#o.attachmentEvery > 0 && turn % this.#o.attachmentEvery === 0 && ch.agentAttachments !== false;
    this.#schedule(r, () => {
      const agent = { id: 'omnichannel-agent-1', name: 'Agent 1', role: 'bot' };
      if (this.#o.typing) this.#deps.typing(r.conversationId, agent);
      const reply: Activity = {
        type: 'message',
        from: agent,
        text: `Agent 1 (${ch.workstream}) got your message ${turn}: "${activity.text ?? ''}"`,
        locale: language,
      };
      if (withAttachment) {
        reply.attachments = [
          { contentType: 'image/png', contentUrl: this.#deps.blobUrl(`reply-${turn}.png`), name: `reply-${turn}.png` },
        ];
        r.agentAttachments += 1;
      }
      this.#post(r, reply);
      if (closing) {
        if (ch.surveyUrl !== undefined) {
          r.surveyUrl = ch.surveyUrl;
          this.#post(r, {
            type: 'message',
            from: { id: 'omnichannel', name: 'Automated message', role: 'bot' },
            text: `${texts(language).survey} ${ch.surveyUrl}`,
            locale: language,
            channelData: { tags: 'survey' },
          });
        }
        this.#post(r, {
          type: 'endOfConversation',
          from: { id: 'omnichannel', name: 'Automated message', role: 'bot' },
          code: 'completedSuccessfully',
        });
      }
    });
  }

  #post(r: ConversationRecord, activity: Activity): void {
    if (this.#closed || r.expired) return;
    if (this.#deps.post(r.conversationId, activity)) this.#posted(r, activity);
  }

  #schedule(r: ConversationRecord, run: () => void): void {
    const now = this.#deps.clock();
    const at = Math.max(now + this.#o.replyDelayMs, this.#queueEnd.get(r.conversationId) ?? 0);
    this.#queueEnd.set(r.conversationId, at);
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      run();
    }, at - now);
    this.#timers.add(timer);
  }

  /** Replies scheduled and not sent yet. */
  pending(): number {
    return this.#timers.size;
  }

  records(): ConversationRecord[] {
    return [...this.#records.values()].map((r) => structuredClone(r));
  }

  record(conversationId: string): ConversationRecord | undefined {
    const r = this.#records.get(conversationId);
    return r && structuredClone(r);
  }

  reset(): void {
    this.#records.clear();
  }

  close(): void {
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }
}
