import type { Db } from '../../shared/db.js';

export interface Product {
  id: number;
  name: string;
  description: string | null;
  /** Price in integer cents. */
  price: number;
  createdAt: Date;
}

interface ProductRow {
  id: number;
  name: string;
  description: string | null;
  price: number;
  created_at: Date;
}

const toProduct = (row: ProductRow): Product => ({
  id: row.id,
  name: row.name,
  description: row.description,
  price: row.price,
  createdAt: row.created_at,
});

export function createProductsRepository({ db }: { db: Db }) {
  return {
    async createProduct(input: { name: string; description: string | null; price: number }): Promise<Product> {
      const [row] = await db<ProductRow>('products').insert(input).returning('*');
      return toProduct(row as ProductRow);
    },

    async listProducts(limit: number): Promise<Product[]> {
      const rows = await db<ProductRow>('products').orderBy('id').limit(limit);
      return rows.map(toProduct);
    },
  };
}

export type ProductsRepository = ReturnType<typeof createProductsRepository>;
