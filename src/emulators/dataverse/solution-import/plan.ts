/** Shapes shared by the planning steps of a solution import. */
import type { TableDef } from '../metadata.js';
import type { OrganizationService } from '../service.js';
import type { Row } from '../store.js';
import type { SeedTile } from '../tile.js';
import type { SolutionContent } from './read.js';

/** One component in the import log. */
export interface ImportedComponent {
  kind: 'entity' | 'webResource' | 'channelDefinition' | 'messagePart' | 'customApi';
  name: string;
  created: boolean;
}

export interface RowWrite {
  table: string;
  id: string;
  values: Row;
}

/** What `applyImport` writes, all checked. */
export interface ImportPlan {
  content: SolutionContent;
  tables: TableDef[];
  rows: RowWrite[];
  tiles: SeedTile[];
  components: ImportedComponent[];
}

/** A table as it will be after the import: the solution's (new or changed) or the org's. */
export function tableIn(service: OrganizationService, tables: TableDef[], logical: string): TableDef | undefined {
  return tables.find((t) => t.logicalName === logical) ?? service.catalog.byLogicalName(logical);
}
