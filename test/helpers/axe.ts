import { AxeBuilder } from '@axe-core/playwright';
import type { Page } from 'playwright-core';

/** The two widths every page state is checked at: a laptop and a small phone. */
export const WIDTHS = { desktop: { width: 1100, height: 800 }, phone: { width: 360, height: 740 } } as const;

/**
 * axe's findings on the page as it is now, at a desktop and a phone width, as
 * readable lines (rule, what it asks, where); an empty list is a clean page.
 * Every rule axe runs by default counts, best practices included.
 */
export async function axeViolations(page: Page): Promise<string[]> {
  const found: string[] = [];
  const before = page.viewportSize();
  for (const [name, size] of Object.entries(WIDTHS)) {
    await page.setViewportSize(size);
    const results = await new AxeBuilder({ page }).analyze();
    // A run that checked nothing (axe not injected) must not pass for a clean page.
    if (results.passes.length === 0) throw new Error(`axe checked nothing on ${page.url()}`);
    for (const v of results.violations) found.push(`${name}: ${v.id} (${v.help}) at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  }
  if (before) await page.setViewportSize(before);
  return found;
}
