import { defineStore } from 'pinia'
import { accountsApi, authApi } from '@/api'
import { getToken, setToken, clearToken } from '@/utils/token'
import { realtime } from '@/realtime'

export const useAuthStore = defineStore('auth', {
  state: () => ({
    token: getToken(),
    user: null, // GET /accounts/me
  }),
  getters: {
    isLoggedIn: (s) => !!s.token,
    role: (s) => s.user?.role || '',
    roleLabel: (s) => s.user?.role_label || '',
    displayName: (s) => s.user?.display_name || s.user?.username || '',
  },
  actions: {
    hasRole(roles) {
      if (!roles || roles.length === 0) return true
      return roles.includes(this.role)
    },
    /** Store a fresh login ({token, expires_at, user}) and load the full profile. */
    async loginWith(result) {
      setToken(result.token)
      this.token = result.token
      this.user = result.user || null
      await this.fetchMe()
    },
    async fetchMe() {
      const me = await accountsApi.me()
      this.user = me
      return me
    },
    /** Forget the session locally (token already invalid or being revoked). */
    reset() {
      clearToken()
      this.token = ''
      this.user = null
      realtime.disconnect()
    },
    async logout() {
      realtime.disconnect()
      if (getToken()) {
        try {
          await authApi.logout({ silent: true })
        } catch {
          /* the token may already be gone; leave anyway */
        }
      }
      this.reset()
    },
    /** End every session of this account (every device), this one included. */
    async logoutAll() {
      await authApi.logoutAll()
      this.reset()
    },
  },
})
