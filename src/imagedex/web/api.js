// The HTTP API, as the app uses it: JSON in and out, {detail} errors, CSRF on unsafe requests.

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
    this.detail = detail;
  }
}

export function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

let sessionCsrf = ""; // /api/session's copy, should the cookie be unreadable

function csrfHeaders(method) {
  const token = cookie("imagedex_csrf") || sessionCsrf;
  return UNSAFE.has(method) && token ? { "X-CSRF-Token": token } : {};
}

/** FastAPI's detail is a string, or a list of {loc, msg} for validation errors. */
export function describeDetail(detail, status) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((item) => {
        const where = Array.isArray(item.loc) ? item.loc.filter((p) => p !== "query" && p !== "body").join(".") : "";
        return where ? `${where}: ${item.msg}` : item.msg;
      })
      .join("; ");
  }
  return `the server answered ${status}`;
}

async function errorFrom(response) {
  let detail = null;
  try {
    detail = (await response.json()).detail;
  } catch {
    detail = null;
  }
  const error = new ApiError(response.status, describeDetail(detail, response.status));
  if (response.status === 401) window.dispatchEvent(new CustomEvent("imagedex:unauthorized"));
  return error;
}

/** fetch() a JSON endpoint; throws ApiError (or the AbortError of a cancelled request). */
export async function api(path, { method = "GET", json, body, signal } = {}) {
  const headers = { Accept: "application/json", ...csrfHeaders(method) };
  let payload = body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload, signal, credentials: "same-origin" });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "the server cannot be reached; check that `imagedex up` is running");
  }
  if (!response.ok) throw await errorFrom(response);
  if (response.status === 204) return null;
  return response.json();
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === "" || value === false) continue;
    for (const item of Array.isArray(value) ? value : [value]) search.append(key, String(item));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** Who is logged in, and whether the server wants a login at all. */
export async function loadSession() {
  try {
    const data = (await api("/api/session")) || {};
    const user = typeof data.user === "object" && data.user ? data.user : {};
    const name = data.name ?? user.name ?? (typeof data.user === "string" ? data.user : null);
    const authenticated = Boolean(data.authenticated ?? data.logged_in ?? name);
    sessionCsrf = data.csrf_token || "";
    return {
      authRequired: Boolean(data.auth_required ?? data.required ?? !authenticated),
      authenticated,
      name,
      role: data.role ?? user.role ?? null,
      via: data.via ?? user.via ?? null,
    };
  } catch (error) {
    if (error.status === 404) return { authRequired: false, authenticated: false, name: null, role: null };
    if (error.status === 401) return { authRequired: true, authenticated: false, name: null, role: null };
    throw error;
  }
}

export const login = (name, password) => api("/api/login", { method: "POST", json: { name, password } });
export const logout = () => api("/api/logout", { method: "POST" });

/** POST one file to /api/images with upload progress (fetch cannot report upload progress). */
export function uploadImage(file, { title, onProgress } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/images");
    xhr.responseType = "json";
    xhr.setRequestHeader("Accept", "application/json");
    for (const [key, value] of Object.entries(csrfHeaders("POST"))) xhr.setRequestHeader(key, value);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable && onProgress) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      const data = xhr.response || {};
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else {
        if (xhr.status === 401) window.dispatchEvent(new CustomEvent("imagedex:unauthorized"));
        reject(new ApiError(xhr.status, describeDetail(data.detail, xhr.status)));
      }
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "the upload could not reach the server")));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "the upload was cancelled")));
    const form = new FormData();
    form.append("file", file, file.name);
    if (title) form.append("title", title);
    xhr.send(form);
  });
}

export const thumbnailUrl = (id, size = 320) => `/api/images/${encodeURIComponent(id)}/thumbnail?size=${size}`;
export const contentUrl = (id) => `/api/images/${encodeURIComponent(id)}/content`;
