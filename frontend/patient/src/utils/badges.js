// 待办与角标：首页“待办”条、底部标签栏角标都来自 GET /todos/（各模块登记的待办汇总）
import { reactive } from 'vue'
import { get } from './request.js'

export const TAB_HOME = 0
export const TAB_MESSAGES = 1

export const todos = reactive({ items: [], total: 0, partial: false, loaded: false, error: '' })

function setBadge(index, n) {
  try {
    if (n > 0) uni.setTabBarBadge({ index, text: n > 99 ? '99+' : String(n), fail: () => {} })
    else uni.removeTabBarBadge({ index, fail: () => {} })
  } catch (e) {
    // 非标签页（如登录页）上没有标签栏
  }
}

export function applyBadges() {
  const unread = todos.items.find((t) => t.kind === 'im.unread')
  const others = todos.items.filter((t) => t.kind !== 'im.unread').reduce((n, t) => n + t.count, 0)
  setBadge(TAB_HOME, others)
  setBadge(TAB_MESSAGES, unread ? unread.count : 0)
}

let inflight = null
export function refreshTodos() {
  if (inflight) return inflight
  inflight = get('/todos/', { toast: false })
    .then((r) => {
      todos.items = r.items || []
      todos.total = r.total || 0
      todos.partial = !!r.partial
      todos.loaded = true
      todos.error = ''
      applyBadges()
    })
    .catch((e) => {
      todos.error = (e && e.message) || '待办加载失败'
    })
    .finally(() => {
      inflight = null
    })
  return inflight
}
