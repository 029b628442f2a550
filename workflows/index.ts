export { reconcileTenant } from './reconcile';
export { disputeWorkflow } from './dispute';
export { deliverSinks } from './sinks';
export { reconcileSinkWorkflow } from './sink-reconcile';
