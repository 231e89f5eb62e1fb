/**
 * What Dataverse's posts to `activities` mean, once decoded: the events intake handles. The decoder
 * (`src/dataverse/remote-context.ts`) makes them; the intake stage reads them. Kept here, with the stage, so that the
 * stage depends on no decoder and the decoder implements the stage's contract.
 */

/** Where the event came from: the posted context's identifiers, for logs and correlation. */
export interface EventOrigin {
  organizationId: string;
  correlationId: string;
  operationId: string;
}

/** A Custom Channel Activity was created: everything intake needs to send and CreateInteraction needs to record. */
export interface ActivityEvent extends EventOrigin {
  kind: 'activity';
  /** `msdyncrm_customerjourneycustomchannelactivityid`: the key of everything the relay does for this activity. */
  activityRowId: string;
  /** `msdyncrm_activityid`: most likely the tile's id, shared by the tile's contacts; passed to CreateInteraction only. */
  activityId: string;
  contactId: string;
  journeyId: string;
  iterationId: string;
  /** `msdyncrm_entitytype`: the custom message table's logical name. */
  entityType: string;
  /** `msdyncrm_entityid`: the message record's id. */
  entityId: string;
  /** `msdyncrm_name`, when set. */
  name?: string;
}

/**
 * A Create whose Target cannot be used as posted: Dataverse dropped its inputs (above 192 KB), or the Target lacks
 * attributes the relay needs (`missing`; a Create's Target carries what the create request set, not the row). Intake
 * reads the row (one read for all such events of a batch) and builds the activity with `activityFromRow`.
 */
export interface TruncatedActivityEvent extends EventOrigin {
  kind: 'activity-truncated';
  activityRowId: string;
  /** The Target attributes that were absent; absent itself when Dataverse truncated the event. */
  missing?: string[];
}

/** A real-time journeys send through the outbound Custom API. */
export interface RealtimeEvent extends EventOrigin {
  kind: 'realtime';
  /** The Custom API (message) called. */
  customApi: string;
  channelDefinitionId: string;
  requestId: string;
  from: string;
  to: string;
  /** Message parts by name (`text` …). */
  message: Record<string, string>;
  /** `MarketingAppContext.CustomerJourneyId`, absent when missing or the empty GUID. */
  journeyId?: string;
  isTestSend: boolean;
}

export type DecodedEvent = ActivityEvent | TruncatedActivityEvent | RealtimeEvent;
