/**
 * The recorder stage: `interactions` written back to Dataverse in batches.
 */
export { RecorderStage, type RecorderOptions, type RecorderStats } from './stage.js';
