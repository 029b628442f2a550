export { reconcileTenant } from './reconcile';
export { disputeWorkflow } from './dispute';
