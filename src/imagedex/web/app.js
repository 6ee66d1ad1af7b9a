// The app shell: history-API routing, the session check and the login redirect.

import { ApiError, loadSession, logout } from "./api.js";
import { clear, h } from "./dom.js";

const ROUTES = [
  { pattern: /^\/(?:search)?$/, module: "./search.js", title: "Search" },
  { pattern: /^\/images\/([^/]+)$/, module: "./image.js", title: "Image" },
  { pattern: /^\/people$/, module: "./people.js", title: "People" },
  { pattern: /^\/dashboard$/, module: "./dashboard.js", title: "Dashboard" },
  { pattern: /^\/reports$/, module: "./reports.js", title: "Reports" },
  { pattern: /^\/alerts$/, module: "./alerts.js", title: "Alerts" },
  { pattern: /^\/upload$/, module: "./upload.js", title: "Upload" },
  { pattern: /^\/login$/, module: "./login.js", title: "Log in" },
];

const main = document.getElementById("main");
let current = { route: null, page: null, cleanup: null };
export const session = { authRequired: false, authenticated: false, name: null, role: null };

function match(pathname) {
  for (const route of ROUTES) {
    const found = route.pattern.exec(pathname);
    if (found) return { route, params: found.slice(1).map(decodeURIComponent) };
  }
  return null;
}

/** Go to an in-app URL: pushes (or replaces) a history entry and renders the page. */
export function navigate(url, { replace = false } = {}) {
  const target = new URL(url, location.href);
  if (target.origin !== location.origin || !match(target.pathname)) {
    location.assign(target.href);
    return;
  }
  const next = target.pathname + target.search + target.hash;
  if (next !== location.pathname + location.search + location.hash) {
    history[replace ? "replaceState" : "pushState"]({}, "", next);
  }
  render();
}

function markCurrentNav() {
  for (const link of document.querySelectorAll(".site-header nav a")) {
    const active = location.pathname === link.pathname || (link.pathname === "/search" && location.pathname === "/");
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function needsLogin(pathname) {
  return session.authRequired && !session.authenticated && pathname !== "/login";
}

async function render() {
  markCurrentNav();
  if (needsLogin(location.pathname)) {
    const back = location.pathname + location.search;
    history.replaceState({}, "", `/login?next=${encodeURIComponent(back)}`);
  }
  const found = match(location.pathname);
  if (!found) {
    clear(main).append(h("h1", {}, "Not found"), h("p", {}, "No page here. ", h("a", { href: "/search" }, "Search images")));
    return;
  }
  const url = new URL(location.href);
  if (current.route === found.route && current.page?.update) {
    current.page.update(url, found.params);
    return;
  }
  if (current.cleanup) current.cleanup();
  current = { route: found.route, page: null, cleanup: null };
  const page = await import(found.route.module);
  if (current.route !== found.route) return; // navigated away while loading
  document.title = `${found.route.title} · imagedex`;
  clear(main);
  current.page = page;
  current.cleanup = page.render(main, url, found.params, { navigate, session, refreshSession }) || null;
}

function showWho() {
  const who = clear(document.getElementById("who"));
  if (!session.authenticated || !session.name || session.via === "local") return;
  who.append(
    h("span", {}, `${session.name}`, session.role ? h("span", { class: "muted" }, ` (${session.role})`) : null),
    " ",
    h("button", {
      type: "button",
      class: "link-button",
      onclick: async () => {
        try { await logout(); } catch { /* the session may already be gone */ }
        await refreshSession();
        navigate("/login");
      },
    }, "Log out"),
  );
}

export async function refreshSession() {
  Object.assign(session, await loadSession());
  showWho();
  return session;
}

// Same-origin links to app pages navigate in place; modified clicks keep the browser's behaviour.
document.addEventListener("click", (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const link = event.target.closest("a[href]");
  if (!link || link.getAttribute("target") || link.hasAttribute("download")) return;
  // SVG links (chart bars) have no .origin/.pathname: read the attribute
  const target = new URL(link.getAttribute("href"), location.href);
  if (target.origin !== location.origin || !match(target.pathname)) return;
  event.preventDefault();
  navigate(target.href);
  if (link.closest(".site-header")) main.focus({ preventScroll: true });
});

window.addEventListener("popstate", () => render());
window.addEventListener("imagedex:unauthorized", async () => {
  await refreshSession().catch(() => {});
  if (needsLogin(location.pathname)) render();
});

async function start() {
  try {
    await refreshSession();
  } catch (error) {
    const detail = error instanceof ApiError ? error.detail : String(error);
    clear(main).append(h("h1", {}, "imagedex is unavailable"), h("p", { class: "error", role: "alert" }, detail),
      h("p", {}, h("button", { type: "button", onclick: () => location.reload() }, "Try again")));
    return;
  }
  await render();
}

start();
