/** Set-up for the src/dataverse integration tests: the Dataverse emulator and the relay's own client stack. */
import type { DynamicsWebApi } from 'dynamics-web-api';
import {
  closeDataverseClient,
  createDataverseClient,
  createGovernor,
  type DataverseClientOptions,
  type Governor,
  type GovernorOptions,
} from '../../../src/dataverse/index.js';
import type { MarketingContext, InteractionMessage } from '../../../src/pipeline/messages.js';
import { IDS } from '../emulators/dataverse/helpers.js';

export interface Stack {
  client: DynamicsWebApi;
  governor: Governor;
  close(): Promise<void>;
}

/** A governor and an emulator-auth client whose responses feed it (unless `observe` is false). */
export function stack(
  url: string,
  identity: string,
  governorOptions: GovernorOptions = {},
  clientOptions: Partial<DataverseClientOptions> & { observe?: boolean } = {},
): Stack {
  const governor = createGovernor(governorOptions);
  const { observe = true, ...rest } = clientOptions;
  const client = createDataverseClient({
    url,
    auth: 'emulator',
    tokenIdentity: identity,
    timeoutMs: 10_000,
    ...(observe ? { onResponse: governor.observe } : {}),
    ...rest,
  });
  return {
    client,
    governor,
    close: async () => {
      governor.close();
      closeDataverseClient(client);
    },
  };
}

export interface Stats {
  identities: Record<
    string,
    { served: number; throttled: { requests: number; executionTime: number; concurrency: number } }
  >;
  traffic: { requests: number; batches: number; batchOperations: number };
}

export async function stats(url: string): Promise<Stats> {
  return (await (await fetch(`${url}/_emulator/stats`)).json()) as Stats;
}

export interface RecordedInteraction {
  seq: number;
  kind: string;
  activityId?: string;
  activityRowId?: string;
  contactId?: string;
  responseType?: string;
  triggerKeyword?: string;
  duplicateOf?: number;
  payload?: Record<string, unknown>;
}

export async function interactions(
  url: string,
  query = '',
): Promise<{ count: number; duplicates: number; value: RecordedInteraction[] }> {
  return (await (await fetch(`${url}/_emulator/interactions${query}`)).json()) as never;
}

/** The marketing interaction for an activity the emulator's journey run created. */
export function marketingInteraction(
  created: { contactId: string; activityId: string; activityRowId: string },
  responseType: string,
  extra: Partial<InteractionMessage> = {},
): InteractionMessage {
  const context: MarketingContext = {
    kind: 'marketing',
    activityId: created.activityId,
    activityRowId: created.activityRowId,
    contactId: created.contactId,
    journeyId: IDS.journey,
    iterationId: IDS.iteration,
    entityType: 'sample_specialmessage',
    entityId: IDS.message,
  };
  return { v: 1, context, responseType, channel: 'sms', occurredAt: Date.now(), ...extra };
}
