// Polls `load` the way the shop's live parts follow a visitor: every 2 s,
// and every 250 ms for 2 s after a click, a submitted form or a route change,
// so what a click changed shows within a second. Only while the tab is
// visible, and one request at a time; a failed load waits for the next poll.
export function useFollowPoll(load: () => Promise<void>) {
  const route = useRoute();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let fastUntil = 0;
  let inFlight = false;

  async function refresh() {
    if (inFlight) return;
    inFlight = true;
    try {
      await load();
    } catch {
      // The next poll tries again.
    } finally {
      inFlight = false;
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      if (document.visibilityState === 'visible') await refresh();
      schedule();
    }, Date.now() < fastUntil ? 250 : 2000);
  }

  function quicken() {
    fastUntil = Date.now() + 2000;
    schedule();
  }

  onMounted(() => {
    refresh();
    schedule();
    document.addEventListener('click', quicken, true);
    document.addEventListener('submit', quicken, true);
  });
  onBeforeUnmount(() => {
    clearTimeout(timer);
    document.removeEventListener('click', quicken, true);
    document.removeEventListener('submit', quicken, true);
  });
  watch(() => route.fullPath, quicken);
}
