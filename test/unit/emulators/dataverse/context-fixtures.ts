import { builtInTables, defineTable } from '../../../../src/emulators/dataverse/metadata.js';
import type { ContextInput } from '../../../../src/emulators/dataverse/remote-context.js';

/** The Custom Channel Activity table as the emulator defines it. */
export const ACTIVITY_TABLE = defineTable(
  builtInTables().find((t) => t.logicalName === 'msdyncrm_customerjourneycustomchannelactivity')!,
);
export const ROW_ID = 'aaaaaaaa-0000-4000-8000-000000000001';
export const CONTACT_ID = 'bbbbbbbb-0000-4000-8000-000000000002';

/** The fields of a RemoteExecutionContext that do not depend on the row: fixed ids and a fixed time. */
export const CONTEXT_FIELDS: Omit<ContextInput, 'table' | 'row'> = {
  messageName: 'Create',
  userId: 'cccccccc-0000-4000-8000-000000000003',
  initiatingUserId: 'cccccccc-0000-4000-8000-000000000003',
  organizationId: 'dddddddd-0000-4000-8000-000000000004',
  organizationName: 'org',
  businessUnitId: 'eeeeeeee-0000-4000-8000-000000000005',
  correlationId: 'ffffffff-0000-4000-8000-000000000006',
  operationId: 'ffffffff-0000-4000-8000-000000000007',
  requestId: 'ffffffff-0000-4000-8000-000000000007',
  operationCreatedOn: new Date(1_721_816_905_786),
  step: { id: '99999999-0000-4000-8000-000000000008', name: 'CCA Create → SB' },
};
