/** The context a token seals: where an outbound-marketing activity came from, everything CreateInteraction needs. */
export interface MarketingContext {
  kind: 'marketing';
  /**
   * `msdyncrm_activityid` of the Custom Channel Activity: most likely the journey tile's id, shared by every contact
   * of the tile. Only passed on (CreateInteraction's `ActivityId`), never a key.
   */
  activityId: string;
  /** The activity row's id (`msdyncrm_customerjourneycustomchannelactivityid`): the key of everything about it. */
  activityRowId: string;
  contactId: string;
  journeyId: string;
  iterationId: string;
  /** `msdyncrm_entitytype`: the logical name of the custom message table. */
  entityType: string;
  /** `msdyncrm_entityid`: the message record's id. */
  entityId: string;
}
