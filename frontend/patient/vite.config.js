import { defineConfig } from 'vite'
import uni from '@dcloudio/vite-plugin-uni'

// 开发时把 /api 和 /ws 代理到本地后端（可用 VITE_DEV_BACKEND 覆盖）
const backend = process.env.VITE_DEV_BACKEND || 'http://127.0.0.1:8000'
const isH5 = (process.env.UNI_PLATFORM || 'h5') === 'h5'

export default defineConfig({
  // H5 部署在 /h5/ 下，静态资源从 /h5/assets/... 加载
  base: isH5 ? '/h5/' : undefined,
  plugins: [uni()],
  server: {
    host: '127.0.0.1',
    proxy: {
      '/api': { target: backend, changeOrigin: false },
      '/ws': { target: backend.replace(/^http/, 'ws'), ws: true, changeOrigin: false },
    },
  },
})
