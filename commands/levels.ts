import { LEVELS, type Level, type LevelThresholds } from "./types.ts";

export const DEFAULT_THRESHOLDS: LevelThresholds = { viewer: 0, operator: 50, admin: 100 };

/** The highest level a room power level reaches, or undefined when it is below every threshold. */
export function levelFor(powerLevel: number, thresholds: LevelThresholds): Level | undefined {
  let found: Level | undefined;
  for (const level of LEVELS) if (powerLevel >= thresholds[level]) found = level;
  return found;
}

export function allows(have: Level | undefined, need: Level): boolean {
  return have !== undefined && LEVELS.indexOf(have) >= LEVELS.indexOf(need);
}
