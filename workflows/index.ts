export { reconcileTenant } from './reconcile';
