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
  account_id: number;
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

/** An account's products; no call ever sees another account's. */
export function createProductsRepository({ db }: { db: Db }) {
  return {
    async createProduct(
      accountId: number,
      input: { name: string; description: string | null; price: number },
    ): Promise<Product> {
      const [row] = await db<ProductRow>('products')
        .insert({ account_id: accountId, ...input })
        .returning('*');
      return toProduct(row as ProductRow);
    },

    async listProducts(accountId: number, limit: number): Promise<Product[]> {
      const rows = await db<ProductRow>('products').where({ account_id: accountId }).orderBy('id').limit(limit);
      return rows.map(toProduct);
    },
  };
}

export type ProductsRepository = ReturnType<typeof createProductsRepository>;
