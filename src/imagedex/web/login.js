// Log in with a name and password; the server sets the session and CSRF cookies.

import { login } from "./api.js";
import { h } from "./dom.js";

export function render(main, url, _params, ctx) {
  const next = url.searchParams.get("next");
  const safeNext = sameOriginPath(next) || "/search";
  const name = h("input", { id: "login-name", name: "username", autocomplete: "username", required: true });
  const password = h("input", { id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const error = h("p", { class: "error", id: "login-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit" }, "Log in");
  const form = h("form", { class: "login", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Log in"),
    ctx.session.authRequired ? null : h("p", { class: "hint" }, "This server does not require a login; you can go straight to ", h("a", { href: "/search" }, "search"), "."),
    h("div", { class: "field" }, h("label", { for: "login-name" }, "Name"), name),
    h("div", { class: "field" }, h("label", { for: "login-password" }, "Password"), password),
    error, submit,
    h("p", { class: "hint" }, "No account? Ask an admin of this imagedex; scripts use API keys instead."));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.hidden = true;
    try {
      await login(name.value.trim(), password.value);
      await ctx.refreshSession();
      ctx.navigate(safeNext, { replace: true });
    } catch (failure) {
      error.textContent = failure.status === 401 || failure.status === 403
        ? "Wrong name or password."
        : failure.status === 429 ? `Too many attempts: ${failure.detail}` : failure.detail || String(failure);
      error.hidden = false;
      password.select();
    } finally {
      submit.disabled = false;
    }
  });
  main.append(form);
  name.focus();
}

/** `next` only if it resolves to this origin (`/\\evil.example` and `//evil` do not). */
function sameOriginPath(next) {
  if (!next) return null;
  try {
    const target = new URL(next, location.origin);
    return target.origin === location.origin ? target.pathname + target.search + target.hash : null;
  } catch {
    return null;
  }
}
