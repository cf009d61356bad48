// Usernames by id: messages, rooms and transfers name people by id; each is fetched once.
import type { Api } from './api';
import { ApiError } from './http';
import { Observable } from './observable';
import type { Id, User } from './types';

export class Users extends Observable {
  private readonly names = new Map<Id, string>();
  private readonly loading = new Set<Id>();

  constructor(
    private readonly api: Api,
    me: User,
  ) {
    super();
    this.names.set(me.id, me.username);
  }

  /** The username of `id`, or a placeholder until it has been fetched. */
  name(id: Id): string {
    const known = this.names.get(id);
    if (known !== undefined) return known;
    if (!this.loading.has(id)) {
      this.loading.add(id);
      this.api.user(id).then(
        (user) => this.remember(user),
        () => this.loading.delete(id),
      );
    }
    return `user ${id}`;
  }

  /** The user with `username` (case-insensitive); `user_not_found` if there is none. */
  async find(username: string): Promise<User> {
    try {
      const user = await this.api.userByUsername(username.trim());
      this.remember(user);
      return user;
    } catch (error) {
      // The lookup's `not_found` means nobody has that username: say so in those words.
      throw error instanceof ApiError && error.code === 'not_found' ? new ApiError('user_not_found', 404) : error;
    }
  }

  private remember(user: User): void {
    this.loading.delete(user.id);
    this.names.set(user.id, user.username);
    this.changed();
  }
}
