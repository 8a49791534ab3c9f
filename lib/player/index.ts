/**
 * `live-smooth/player`: the sample player page, a dash.js (with its MSS module) page served with the
 * bundles of the `dashjs` package, which this entry alone needs (an optional peer dependency).
 */
export { player } from '../http/player';
export type { PlayerOptions, PlayerHandler } from '../http/player';
export { playerPage } from './page';
export type { PlayerPageConfig } from './page';
