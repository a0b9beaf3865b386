// Pages of a prior record: an API address needs the bearer token, so it is fetched once as
// a blob and shown through an object URL (as the chat's attachments); any other address
// (a signed storage link) is used as it is.
import { getToken } from '@/utils/token'

const cache = new Map()

export function fileUrl(url) {
  if (!url || !/^\/api\//.test(url)) return Promise.resolve(url || '')
  if (cache.has(url)) return cache.get(url)
  const p = fetch(url, { headers: { Authorization: `Bearer ${getToken()}` } }).then(async (res) => {
    if (!res.ok) throw new Error('病历页加载失败')
    return URL.createObjectURL(await res.blob())
  })
  p.catch(() => cache.delete(url))
  cache.set(url, p)
  return p
}
