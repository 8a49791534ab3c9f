/**
 * Headless Chromium for the tests whose players play media in pages: autoplay allowed, and no
 * throttling of pages in the background, since several players play at once.
 */
import { Browser, chromium } from 'playwright-core';

/** Launches the Chromium at `executablePath` for player pages. */
export function launchPlayerBrowser(executablePath: string): Promise<Browser> {
  return chromium.launch({
    executablePath,
    args: [
      '--no-sandbox',
      '--autoplay-policy=no-user-gesture-required',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-background-timer-throttling',
      '--disable-renderer-backgrounding',
      '--disable-backgrounding-occluded-windows',
    ],
  });
}
