import { UnsupportedLanguageError } from '../errors.ts';
import type { Language } from './language.ts';

/** Finds a language by id or alias, case-insensitively. */
export class LanguageRegistry {
  private readonly byName = new Map<string, Language>();

  constructor(readonly languages: readonly Language[]) {
    for (const language of languages) {
      for (const name of [language.id, ...language.aliases]) this.byName.set(name, language);
    }
  }

  get ids(): string[] {
    return this.languages.map((l) => l.id);
  }

  find(name: string): Language | undefined {
    return this.byName.get(name.toLowerCase());
  }

  /** @throws UnsupportedLanguageError listing the supported ids */
  resolve(name: string): Language {
    const language = this.find(name);
    if (!language) throw new UnsupportedLanguageError(name, this.ids);
    return language;
  }
}
