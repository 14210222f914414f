import { describe, expect, it } from 'vitest';
import { constantSchedule, linearSchedule, makeSchedule, scheduleSchema, scheduleStart } from '../../src/control/schedule.ts';

describe('schedules of the remaining progress', () => {
  it('linear goes from start at progressRemaining 1 to end at 0', () => {
    const s = linearSchedule(1e-3, 0);
    expect(s(1)).toBe(1e-3);
    expect(s(0)).toBe(0);
    expect(s(0.25)).toBeCloseTo(2.5e-4, 15);
    expect(makeSchedule({ type: 'linear', start: 0.2, end: 0.1 })(0.5)).toBeCloseTo(0.15, 15);
    expect(constantSchedule(3)(0.7)).toBe(3);
    expect(makeSchedule(0.5)(0)).toBe(0.5);
    expect(scheduleStart({ type: 'linear', start: 4, end: 1 })).toBe(4);
  });

  it('rejects progress outside [0, 1] and malformed specs', () => {
    expect(() => linearSchedule(1, 0)(1.5)).toThrow(/progressRemaining must be in \[0, 1\], got 1.5/);
    expect(() => makeSchedule({ type: 'cosine' } as never)).toThrow(/expected a number or/);
  });

  it('the config schema accepts a number or a linear spec within the bounds (a linear end may reach the lower bound)', () => {
    const schema = scheduleSchema(0, 1, false);
    expect(schema.safeParse(3e-4).success).toBe(true);
    expect(schema.safeParse({ type: 'linear', start: 1e-3, end: 0 }).success).toBe(true);
    expect(schema.safeParse(0).success).toBe(false);
    expect(schema.safeParse({ type: 'linear', start: 0, end: 0 }).success).toBe(false);
    expect(schema.safeParse({ type: 'linear', start: 2, end: 0 }).success).toBe(false);
    expect(schema.safeParse({ type: 'linear', start: 0.5, end: 0, extra: 1 }).success).toBe(false);
  });
});
