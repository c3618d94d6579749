/**
 * One class per kind of failure. HTTP maps them by class (never by message text); each message says
 * what to do next and, where a setting controls the behaviour, names it.
 */
export class BraindrillError extends Error {
  /** Stable machine-readable code, sent to clients as `error.code`. */
  readonly code: string;
  /** HTTP status this error maps to when it reaches a client. */
  readonly statusCode: number;

  constructor(code: string, statusCode: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = this.constructor.name;
    this.code = code;
    this.statusCode = statusCode;
  }
}

/** A setting from the environment or config/ is missing or malformed; only the entry point exits. */
export class ConfigError extends BraindrillError {
  constructor(message: string) {
    super('config_invalid', 500, `braindrill: ${message}`);
  }
}

export class UnsupportedLanguageError extends BraindrillError {
  readonly supported: string[];
  constructor(language: string, supported: string[]) {
    super(
      'unsupported_language',
      400,
      `Language "${language.slice(0, 64)}" is not supported. Supported: ${supported.join(', ')} (GET /languages lists aliases).`,
    );
    this.supported = supported;
  }
}

export class ValidationError extends BraindrillError {
  constructor(code: string, message: string, statusCode = 400) {
    super(code, statusCode, message);
  }
}

/** The runtime image is not on this Docker host. The engine never pulls: it must be built here. */
export class ImageMissingError extends BraindrillError {
  constructor(image: string) {
    super(
      'image_missing',
      503,
      `Runtime image ${image} is not present on this Docker host and braindrill never pulls images. ` +
        'Build it with: bash images/build.sh (./deploy.sh does this for you).',
    );
  }
}

export class DockerUnavailableError extends BraindrillError {
  constructor(socket: string, cause: unknown) {
    super(
      'docker_unavailable',
      503,
      `Docker does not answer on ${socket} (${String(cause)}). Start dockerd or set DOCKER_SOCKET.`,
      { cause },
    );
  }
}

/** Too much work waiting: the client should come back later (Retry-After). */
export class OverloadedError extends BraindrillError {
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds = 5) {
    super('backlog_full', 503, message);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** One key has too many jobs waiting or running; others are unaffected. */
export class QuotaExceededError extends BraindrillError {
  constructor(message: string) {
    super('quota_exceeded', 429, message);
  }
}

export class ActorTimeoutError extends BraindrillError {
  constructor(actor: string, ms: number) {
    super('internal_timeout', 504, `${actor} did not answer within ${ms} ms.`);
  }
}

export class NotFoundError extends BraindrillError {
  constructor(code: string, message: string) {
    super(code, 404, message);
  }
}

/** A dependency of this request (Redis, live managers) is not there right now. */
export class UnavailableError extends BraindrillError {
  constructor(code: string, message: string) {
    super(code, 503, message);
  }
}

export class ConflictError extends BraindrillError {
  constructor(code: string, message: string) {
    super(code, 409, message);
  }
}
